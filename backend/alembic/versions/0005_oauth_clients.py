"""oauth clients, consents, codes; session kind and client

The lead re-chains this onto 0003 at merge (down_revision).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 08:29:41.498433
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK_SESSION_CLIENT = "fk_auth_session_client_id_oauth_client"


def upgrade() -> None:
    op.create_table(
        "oauth_client",
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("secret_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("post_logout_redirect_uris", sa.JSON(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("first_party", sa.Boolean(), nullable=False),
        sa.Column("grant_types", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
    )
    op.create_table(
        "oauth_code",
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("browser_session_id", sa.Uuid(), nullable=True),
        sa.Column("redirect_uri", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("code_challenge", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("auth_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amr", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["oauth_client.client_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("oauth_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_code_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oauth_code_user_id"), ["user_id"], unique=False)

    op.create_table(
        "oauth_consent",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["oauth_client.client_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "client_id"),
    )
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum(
                    "api", "browser", "oauth", name="sessionkind", native_enum=False, length=16
                ),
                nullable=False,
                server_default="api",
            )
        )
        batch_op.add_column(
            sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
        )
        batch_op.add_column(sa.Column("auth_time", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("amr", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("browser_session_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_auth_session_client_id"), ["client_id"], unique=False)
        batch_op.create_foreign_key(
            FK_SESSION_CLIENT, "oauth_client", ["client_id"], ["client_id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.drop_constraint(FK_SESSION_CLIENT, type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_auth_session_client_id"))
        batch_op.drop_column("browser_session_id")
        batch_op.drop_column("amr")
        batch_op.drop_column("auth_time")
        batch_op.drop_column("scope")
        batch_op.drop_column("client_id")
        batch_op.drop_column("kind")

    op.drop_table("oauth_consent")
    with op.batch_alter_table("oauth_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_code_user_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_code_client_id"))

    op.drop_table("oauth_code")
    op.drop_table("oauth_client")
