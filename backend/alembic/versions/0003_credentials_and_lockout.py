"""credential versions, pending email, links bound to their address, per-address lockout

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_PURPOSES = ("reset_password", "verify_email", "mfa_login")
NEW_PURPOSES = ("reset_password", "verify_email", "change_email", "mfa_login")


def _purpose(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name="tokenpurpose", native_enum=False, length=32)


def upgrade() -> None:
    op.create_table(
        "login_failure",
        sa.Column("account", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "address"),
    )
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("credentials_version", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("pending_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True)
        )
        batch_op.drop_column("failed_logins")
        batch_op.drop_column("locked_until")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.alter_column("credentials_version", server_default=None)
    with op.batch_alter_table("action_token", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True)
        )
        batch_op.add_column(sa.Column("credentials_version", sa.Integer(), nullable=True))
        batch_op.alter_column(
            "purpose", existing_type=_purpose(OLD_PURPOSES), type_=_purpose(NEW_PURPOSES)
        )
    # Links already mailed keep working: they were sent to the account's address of today.
    op.execute(
        'UPDATE action_token SET email = (SELECT "user".email FROM "user"'
        ' WHERE "user".id = action_token.user_id)'
        " WHERE purpose IN ('reset_password', 'verify_email')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM action_token WHERE purpose = 'change_email'")
    with op.batch_alter_table("action_token", schema=None) as batch_op:
        batch_op.alter_column(
            "purpose", existing_type=_purpose(NEW_PURPOSES), type_=_purpose(OLD_PURPOSES)
        )
        batch_op.drop_column("credentials_version")
        batch_op.drop_column("email")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.drop_column("pending_email")
        batch_op.drop_column("credentials_version")
    op.drop_table("login_failure")
