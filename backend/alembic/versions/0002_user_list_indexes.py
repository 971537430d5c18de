"""user list indexes: GET /users filtered by role or active flag reads an index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:40:00.000000
"""

from collections.abc import Sequence

from alembic import op


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.create_index("ix_user_role_created_at", ["role", "created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_user_is_active_created_at", ["is_active", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_index("ix_user_is_active_created_at")
        batch_op.drop_index("ix_user_role_created_at")
