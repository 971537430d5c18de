"""oauth_client.require_pkce; codes without a PKCE challenge, and the acr_values asked

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 20:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("require_pkce", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("oauth_code", schema=None) as batch_op:
        batch_op.alter_column(
            "code_challenge",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=128),
            nullable=True,
        )
        batch_op.add_column(
            sa.Column("acr_values", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
        )


def downgrade() -> None:
    # Codes live 60 seconds: the ones issued without a challenge cannot go back.
    op.execute("DELETE FROM oauth_code WHERE code_challenge IS NULL")
    with op.batch_alter_table("oauth_code", schema=None) as batch_op:
        batch_op.drop_column("acr_values")
        batch_op.alter_column(
            "code_challenge",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=128),
            nullable=False,
        )
    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.drop_column("require_pkce")
