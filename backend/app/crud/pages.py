"""Keyset pages of a table in (created_at, id) order: the one way the authorization lists
(resources, roles, organizations, members, invitations) are paged."""

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models.common import PageCursor

Row = TypeVar("Row")


def keyset_page(
    session: Session, model: type[Row], *where: Any, limit: int, after: PageCursor | None
) -> tuple[Sequence[Row], int, str | None]:
    """At most `limit` rows of `model` matching `where`, after `after`; the number matching
    `where`; and the cursor of the next page (None on the last)."""
    table: Any = model
    total = session.exec(select(func.count()).select_from(table).where(*where)).one()
    statement = select(table).where(*where).order_by(col(table.created_at), col(table.id))
    if after is not None:
        statement = statement.where(
            (col(table.created_at) > after.created_at)
            | ((col(table.created_at) == after.created_at) & (col(table.id) > after.id))
        )
    rows: Sequence[Any] = session.exec(statement.limit(limit + 1)).all() if limit > 0 else []
    last = rows[limit - 1] if len(rows) > limit else None
    cursor = PageCursor(last.created_at, last.id).encode() if last is not None else None
    return rows[:limit], total, cursor
