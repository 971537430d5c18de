"""What the console's authorization pages (resources, roles, organizations, a user's roles)
share: a list page of keyset rows, a step's refusal as the form's alert, role ids from
checkboxes, the roles and permissions a form offers. The rules themselves are the steps'
(crud/)."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from pydantic import ValidationError
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from app.core.permissions import OrgPermission
from app.crud import authz
from app.db import transaction
from app.errors import BadRequest, DomainError
from app.models.authz import MAX_ROLES_PER_HOLDER, ResourceRead, RoleRead
from app.models.common import CursorPage, PageCursor
from app.web.console.access import Console, refused, render
from app.web.console.paging import KeysetWindow, keyset_window

T = TypeVar("T")
PAGE_SIZE = 50
MAX_CHOICES = 500  # roles, or resources, a form offers as checkboxes
MAX_CURSOR = 64
MAX_BACK = 65 * 40


def first_problem(error: ValidationError, labels: dict[str, str], default: str) -> str:
    """The first thing wrong with a form, named by its field's label (and the bad value)."""
    first = error.errors()[0]
    loc = first["loc"]
    where = labels.get(str(loc[0]) if loc else "", default)
    message = str(first["msg"]).removeprefix("Value error, ")
    value = first.get("input")
    if len(loc) > 1 and isinstance(value, str) and value:
        return f"{where}: “{value[:80]}” {message}"
    return f"{where}: {message}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A step's (or a form's) refusal, as the page re-shows it: the alert and the status."""

    alert: str
    status_code: int


def attempt(run: Callable[[], T], labels: dict[str, str], what: str) -> T | Refusal:
    """`run()`'s result, or its refusal: a form that does not validate (422, its first
    problem in words) or a domain error (its own status and detail)."""
    try:
        return run()
    except ValidationError as error:
        return Refusal(first_problem(error, labels, what), 422)
    except DomainError as error:
        return Refusal(error.detail, error.status)


def role_ids(values: list[str] | None) -> list[uuid.UUID]:
    """The role ids of a form's checkboxes, distinct; a forged value is a 400."""
    raw = values or []
    if len(raw) > MAX_ROLES_PER_HOLDER * 2:
        raise BadRequest(f"At most {MAX_ROLES_PER_HOLDER} roles.")
    try:
        return list(dict.fromkeys(uuid.UUID(value) for value in raw))
    except ValueError:
        raise BadRequest("Choose roles from the list.") from None


@dataclass(frozen=True, slots=True)
class ResourceChoice:
    """A resource in a role form, with the permissions a role may hold of it."""

    resource: ResourceRead
    permissions: list[str]


def role_choices(session: Session) -> list[RoleRead]:
    """The roles a form offers as checkboxes (the first MAX_CHOICES, oldest first)."""
    return _every(lambda after: authz.list_roles(session, limit=100, after=after))


def resource_choices(session: Session) -> list[ResourceChoice]:
    """The permissions a role may hold, by resource: the built-in resource's organization
    permissions only (the rest follow the user's `role`), every permission of the others."""
    org = {str(permission) for permission in OrgPermission}
    return [
        ResourceChoice(
            resource,
            [p.name for p in resource.permissions if not resource.builtin or p.name in org],
        )
        for resource in _every(lambda after: authz.list_resources(session, limit=100, after=after))
    ]


def _every(fetch: Callable[[PageCursor | None], Any]) -> list[Any]:
    items: list[Any] = []
    after: PageCursor | None = None
    while len(items) < MAX_CHOICES:
        page = fetch(after)
        items.extend(page.items)
        if not page.next_cursor:
            break
        after = PageCursor.decode(page.next_cursor)
    return items[:MAX_CHOICES]


def keyset(cursor: str, back: str, fetch: Callable[[PageCursor | None], Any]) -> KeysetWindow[Any]:
    """A console keyset page of a crud `CursorPage` at `cursor` (see paging.keyset_window)."""

    def rows(after: PageCursor | None) -> tuple[list[Any], int, str | None]:
        page = fetch(after)
        return page.items, page.total, page.next_cursor

    return keyset_window(cursor[:MAX_CURSOR], back[:MAX_BACK], rows)


Fetch = Callable[[Session, PageCursor | None], CursorPage[Any]]


def list_page(
    request: Request,
    session: Session,
    console: Console,
    *,
    template: str,
    path: str,
    fetch: Fetch,
    cursor: str = "",
    back: str = "",
    status_code: int = 200,
    **context: Any,
) -> Response:
    """A console list page: the keyset page of `fetch` at `cursor` (a forged cursor is a
    400 page), its Next and Previous links to `path`, and the template's own context."""
    try:
        page = transaction(_window, session, cursor, back, fetch)
    except BadRequest as error:
        raise refused(request, error.detail, console=console, status_code=400) from None
    return render(
        request,
        template,
        console=console,
        status_code=status_code,
        page=page,
        next_url=page_link(path, page.next_query),
        previous_url=page_link(path, page.previous_query),
        **context,
    )


def _window(session: Session, cursor: str, back: str, fetch: Fetch) -> KeysetWindow[Any]:
    return keyset(cursor, back, lambda after: fetch(session, after))


def page_link(path: str, to: dict[str, str] | None) -> str | None:
    if to is None:
        return None
    query = {name: value for name, value in to.items() if value}
    return f"{path}?{urlencode(query)}" if query else path


def parse_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None
