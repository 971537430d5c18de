"""webauthn challenges keep their client address (a bounded number of live ones each)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 20:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webauthn_challenge", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "address",
                sqlmodel.sql.sqltypes.AutoString(length=64),
                nullable=False,
                server_default="-",  # the challenges of the moment: no address known
            )
        )
        batch_op.create_index(
            batch_op.f("ix_webauthn_challenge_address"), ["address"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webauthn_challenge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webauthn_challenge_address"))
        batch_op.drop_column("address")
