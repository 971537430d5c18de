"""Indexes for the retention janitor: each rule finds its purgeable rows by an index on the
time that makes them purgeable, not by scanning a table of millions (docs/retention.md)

Revision ID: 0013_retention_indexes
Revises: 0012_i18n
Create Date: 2026-12-08 03:25:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_retention_indexes"
down_revision: str | None = "0012_i18n"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = [
    ("auth_session", "expires_at"),
    ("auth_session", "revoked_at"),
    ("oauth_client_token", "expires_at"),
    ("oauth_code", "expires_at"),
    ("action_token", "expires_at"),
    ("invitation", "expires_at"),
]


def upgrade() -> None:
    for table, column in INDEXES:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def downgrade() -> None:
    for table, column in reversed(INDEXES):
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
