"""Cursor paging for the console's tables: keyset pages for the users (crud/users.list_users),
an offset held in the cursor for the helpers that page by skip/limit (the audit log)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.errors import BadRequest
from app.models.common import PageCursor

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


# --- keyset pages (crud/users.list_users): Next by the page's cursor, Previous by the trail --

MAX_TRAIL = 40  # pages Previous can walk back through (a cursor is ~38 characters)


@dataclass(frozen=True, slots=True)
class KeysetWindow(Generic[T]):
    items: list[T]
    total: int
    next_query: dict[str, str] | None  # the `cursor` and `back` of the next page's link
    previous_query: dict[str, str] | None


def keyset_window(
    cursor: str, back: str, fetch: Callable[[PageCursor | None], tuple[list[T], int, str | None]]
) -> KeysetWindow[T]:
    """One keyset page at `cursor`; `back` is the comma-separated cursors of the pages
    before it ("" for the first page), which the links carry so that Previous works too."""
    trail = back.split(",") if back else []
    try:
        after = PageCursor.decode(cursor) if cursor else None
        for earlier in trail:
            if earlier:
                PageCursor.decode(earlier)
    except ValueError:
        raise BadRequest("This page link is not valid: start from the first page.") from None
    if len(trail) > MAX_TRAIL:
        raise BadRequest("This page link is not valid: start from the first page.")
    items, total, following = fetch(after)
    next_query = None
    if following:
        next_query = {"cursor": following, "back": ",".join([*trail, cursor][-MAX_TRAIL:])}
    previous_query = None
    if cursor:
        previous_query = {"cursor": trail[-1] if trail else "", "back": ",".join(trail[:-1])}
    return KeysetWindow(items, total, next_query, previous_query)
