"""signing_key (OIDC keys of `manage keys rotate`); oauth_client.id_token_signed_response_alg

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-09 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signing_key",
        sa.Column("kid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("algorithm", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activates_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kid"),
    )
    with op.batch_alter_table("oauth_client") as batch_op:
        batch_op.add_column(
            sa.Column(
                "id_token_signed_response_alg",
                sqlmodel.sql.sqltypes.AutoString(length=8),
                server_default="RS256",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_client") as batch_op:
        batch_op.drop_column("id_token_signed_response_alg")
    op.drop_table("signing_key")
