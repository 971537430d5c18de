"""user.external_id: the id a user had in the system they were imported from (EVENTS.md,
"Bringing users from another system"); unique, so a second import finds them again

Revision ID: 0014_imports
Revises: 0013_retention_indexes
Create Date: 2026-12-08 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0014_imports"
down_revision: str | None = "0013_retention_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_user_external_id"), ["external_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_external_id"))
        batch_op.drop_column("external_id")
