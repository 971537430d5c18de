"""Cursor paging for the console's tables, over the helpers' skip/limit paging.

The cursor is opaque to the pages (links carry it as `cursor`); today it holds an offset.
When crud/users.list_users pages by keyset, only this adapter changes."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.errors import BadRequest

T = TypeVar("T")
PAGE_SIZE = 50
MAX_OFFSET = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Window(Generic[T]):
    items: list[T]
    total: int
    next_cursor: str | None
    previous_cursor: str | None


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    if not cursor.isdigit() or len(cursor) > 10 or int(cursor) > MAX_OFFSET:
        raise BadRequest("This page link is not valid: start from the first page.")
    return int(cursor)


def window(
    cursor: str | None, fetch: Callable[[int, int], tuple[list[T], int]], size: int = PAGE_SIZE
) -> Window[T]:
    """One page of `fetch(skip, limit)` at `cursor`, with the cursors of its neighbours."""
    offset = _offset(cursor)
    items, total = fetch(offset, size)
    following = offset + len(items)
    return Window(
        items=items,
        total=total,
        next_cursor=str(following) if items and following < total else None,
        previous_cursor=str(max(0, offset - size)) if offset > 0 else None,
    )
