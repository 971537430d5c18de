"""API resources, permissions, product roles and their assignments; organizations and
memberships (AUTHZ.md)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 23:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_resource",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("identifier"),
    )
    op.create_table(
        "organization",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("slug", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "product_role",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "api_permission",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.ForeignKeyConstraint(["resource_id"], ["api_resource.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("resource_id", "name"),
    )
    op.create_table(
        "client_role",
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("role_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["oauth_client.client_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["role_id"], ["product_role.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("client_id", "role_id"),
    )
    with op.batch_alter_table("client_role", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_client_role_role_id"), ["role_id"], unique=False)

    op.create_table(
        "invitation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("role_ids", sa.JSON(), nullable=False),
        sa.Column("token_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("inviter_id", sa.Uuid(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["inviter_id"], ["user.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organization_id", "email"),
        sa.UniqueConstraint("token_digest"),
    )
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitation_inviter_id"), ["inviter_id"], unique=False)

    op.create_table(
        "membership",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organization_id", "user_id"),
    )
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_membership_user_id"), ["user_id"], unique=False)

    op.create_table(
        "role_permission",
        sa.Column("role_id", sa.Uuid(), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(["role_id"], ["product_role.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("role_id", "resource_id", "name"),
    )
    with op.batch_alter_table("role_permission", schema=None) as batch_op:
        batch_op.create_index("ix_role_permission_resource", ["resource_id", "name"], unique=False)

    op.create_table(
        "user_role",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["role_id"], ["product_role.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "role_id"),
    )
    with op.batch_alter_table("user_role", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_role_role_id"), ["role_id"], unique=False)

    op.create_table(
        "membership_role",
        sa.Column("membership_id", sa.Uuid(), nullable=False),
        sa.Column("role_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["membership_id"], ["membership.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["role_id"], ["product_role.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("membership_id", "role_id"),
    )
    with op.batch_alter_table("membership_role", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_membership_role_role_id"), ["role_id"], unique=False)

    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resources", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column(
                "organization_usage",
                sqlmodel.sql.sqltypes.AutoString(length=8),
                nullable=False,
                server_default="none",
            )
        )

    with op.batch_alter_table("oauth_client_token", schema=None) as batch_op:
        batch_op.alter_column(
            "scope",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=255),
            type_=sqlmodel.sql.sqltypes.AutoString(length=4096),
            existing_nullable=False,
        )
    with op.batch_alter_table("oauth_code", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("resource", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True)
        )
        batch_op.add_column(sa.Column("organization_id", sa.Uuid(), nullable=True))
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("resource", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True)
        )
        batch_op.add_column(sa.Column("organization_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_auth_session_organization_id"), ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_session_organization_id"))
        batch_op.drop_column("organization_id")
        batch_op.drop_column("resource")
    with op.batch_alter_table("oauth_code", schema=None) as batch_op:
        batch_op.drop_column("organization_id")
        batch_op.drop_column("resource")
    with op.batch_alter_table("oauth_client_token", schema=None) as batch_op:
        batch_op.alter_column(
            "scope",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=4096),
            type_=sqlmodel.sql.sqltypes.AutoString(length=255),
            existing_nullable=False,
        )
    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.drop_column("organization_usage")
        batch_op.drop_column("resources")

    with op.batch_alter_table("membership_role", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_membership_role_role_id"))

    op.drop_table("membership_role")
    with op.batch_alter_table("user_role", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_role_role_id"))

    op.drop_table("user_role")
    with op.batch_alter_table("role_permission", schema=None) as batch_op:
        batch_op.drop_index("ix_role_permission_resource")

    op.drop_table("role_permission")
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_membership_user_id"))

    op.drop_table("membership")
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitation_inviter_id"))

    op.drop_table("invitation")
    with op.batch_alter_table("client_role", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_role_role_id"))

    op.drop_table("client_role")
    op.drop_table("api_permission")
    op.drop_table("product_role")
    op.drop_table("organization")
    op.drop_table("api_resource")
