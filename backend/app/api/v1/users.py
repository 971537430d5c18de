"""/users: the caller's own profile, and other users as the permission matrix allows."""

import uuid
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import AfterValidator, TypeAdapter
from sqlmodel import Session
from typing_extensions import TypedDict

from app.api.deps import (
    BEARER_SECURITY,
    ActorDep,
    AnyPrincipal,
    CallerDep,
    PrincipalDep,
    SessionDep,
    authorize,
    ensure_credentials_changeable,
    request_caller,
    require,
    require_account,
)
from app.api.errors import Responses
from app.api.v1.auth import REAUTHENTICATION
from app.auth import lockout, profile
from app.core.config import get_settings
from app.core.permissions import (
    Permission,
    Role,
    can_read_user,
    can_update_user,
    needed_to_update,
)
from app.crud import users
from app.crud.audit import Actor
from app.db import get_engine, transaction
from app.errors import BadRequest
from app.models.common import CursorPage, PageCursor, parse_cursor
from app.models.user import UserRead, UserUpdate, UserUpdateMe
from app.reads import read_connection
from app.steps import run_step

router = APIRouter(prefix="/users", tags=["users"])
# GET and PATCH /users/me, in a router of their own: it comes first in the app, then the OAuth
# endpoints, then `router` (FastAPI tries one route after another: main.py).
me_router = APIRouter(prefix="/users", tags=["users"])

AUTH_ERRORS: Responses = {
    401: {"description": "Not authenticated"},
    403: {"description": "Forbidden"},
}
NOT_FOUND: Responses = {404: {"description": "User not found"}}
CONFLICT: Responses = {409: {"description": "Email taken, or the last active admin"}}
# A new email needs the right current_password, and is rate limited per user.
EMAIL_CHANGE: Responses = {
    **REAUTHENTICATION,
    429: {"description": "Too many email changes or wrong passwords; see Retry-After"},
}


USER_READ_JSON = TypeAdapter(UserRead)


@me_router.get("/me", response_model=UserRead, responses=AUTH_ERRORS, openapi_extra=BEARER_SECURITY)
async def read_me(request: Request) -> Response:
    """The caller's profile. Every client asks for it on every page, so it skips FastAPI's
    dependency solving and its second validation of the answer (a fifth of the request's
    time in the application): the caller is read exactly as CallerDep reads it."""
    caller = require_account(await request_caller(request))
    return Response(USER_READ_JSON.dump_json(caller.user), media_type="application/json")


@me_router.patch(
    "/me",
    response_model=UserRead,
    responses={**AUTH_ERRORS, **EMAIL_CHANGE, **CONFLICT},
)
async def update_me(
    body: UserUpdateMe, principal: PrincipalDep, session: SessionDep, actor: ActorDep
) -> UserRead:
    changes = body.model_dump(exclude_unset=True)
    if "email" in changes:
        ensure_credentials_changeable(principal.scope)
    return UserRead.model_validate(
        await profile.update_own(session, user=principal.user, changes=changes, actor=actor)
    )


# The user list's JSON: CursorPage[UserRead]'s shape, serialized from the dicts of
# crud.users.list_users (UserRead's fields, already typed) without a model per row, which
# cost more than the page's read. UserRead's fields are taken from it, so the two agree.
UserReadRow = TypedDict(  # type: ignore[misc]
    "UserReadRow", {name: field.annotation for name, field in UserRead.model_fields.items()}
)


class UserListJSON(TypedDict):
    items: list[UserReadRow]
    total: int
    skip: int
    limit: int
    next_cursor: str | None


USER_LIST_JSON = TypeAdapter(UserListJSON)


@router.get(
    "",
    response_model=CursorPage[UserRead],
    responses=AUTH_ERRORS,
    dependencies=[Depends(require(Permission.USERS_READ))],
)
async def list_users(
    skip: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    role: Role | None = None,
    is_active: bool | None = None,
    q: Annotated[str | None, Query(max_length=320)] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=64,
            description="A page's `next_cursor`: the page after it (with `skip`, after that)",
        ),
        AfterValidator(parse_cursor),
    ] = None,
) -> Response:
    after = cast(PageCursor | None, cursor)  # parse_cursor made it one (or refused it: 422)
    query: dict[str, Any] = {
        "skip": skip, "limit": limit, "role": role, "is_active": is_active, "q": q, "after": after
    }  # fmt: skip
    if get_settings().is_sqlite and role is None and is_active is None and not q:
        # Unfiltered: a range of the created_at index, and a count(*) that SQLite takes from
        # the index's page counts, quick even at 100,000 users; cheaper on the event loop,
        # like the per-request read, than a hop to a worker thread and back (bench/README.md,
        # "Where the time goes now").
        with read_connection() as connection:
            page = users.read_user_page(connection, get_engine(), **query)
    else:  # a filtered count or a substring search reads many rows: in a worker thread
        page = await run_step(_user_page, **query)
    body = UserListJSON(
        items=page.items,
        total=page.total,
        skip=skip,
        limit=limit,
        next_cursor=page.next.encode() if page.next else None,
    )
    return Response(USER_LIST_JSON.dump_json(body), media_type="application/json")


def _user_page(**query: Any) -> users.UserPage:
    # One worker-thread hop for the whole page: SessionDep would add two (its set-up and
    # its tear-down are synchronous) to the handler's own.
    with Session(get_engine()) as session:
        return users.list_users(session, **query)


@router.get("/{user_id}", response_model=UserRead, responses={**AUTH_ERRORS, **NOT_FOUND})
def read_user(user_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> UserRead:
    is_self, role = caller.user.id == user_id, caller.user.role
    needed = {Permission.ACCOUNT if is_self else Permission.USERS_READ}
    authorize(caller, lambda scope: can_read_user(role, is_self=is_self, scope=scope), needed)
    return UserRead.model_validate(users.get_user(session, user_id))


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    responses={**AUTH_ERRORS, **NOT_FOUND, **EMAIL_CHANGE, **CONFLICT},
)
async def update_user(
    user_id: uuid.UUID,
    body: UserUpdate,
    caller: CallerDep,
    principal: AnyPrincipal,
    session: SessionDep,
    actor: ActorDep,
) -> UserRead:
    changes = body.model_dump(exclude_unset=True)
    user, fields = principal.user, set(changes)
    is_self = user.id == user_id
    authorize(
        caller,
        lambda scope: can_update_user(user.role, is_self=is_self, fields=fields, scope=scope),
        needed_to_update(is_self=is_self, fields=fields),
    )
    if is_self:  # as PATCH /users/me: a new email is pending, the password has its endpoint
        if "password" in changes:
            raise BadRequest("Change your own password with POST /users/me/password")
        if "email" in changes:
            ensure_credentials_changeable(principal.scope)
        updated = await profile.update_own(session, user=user, changes=changes, actor=actor)
        return UserRead.model_validate(updated)
    updated = await profile.update_by_admin(session, user_id=user_id, changes=changes, actor=actor)
    return UserRead.model_validate(updated)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, **NOT_FOUND, **CONFLICT},
    dependencies=[Depends(require(Permission.USERS_DELETE))],
)
def delete_user(user_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> None:
    transaction(_delete_user, session, user_id, actor)


def _delete_user(session: Session, user_id: uuid.UUID, actor: Actor) -> None:
    users.delete_user(session, user=users.get_user(session, user_id), actor=actor)


@router.post(
    "/{user_id}/unlock",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, **NOT_FOUND},
    dependencies=[Depends(require(Permission.USERS_UNLOCK))],
)
def unlock_user(user_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> None:
    transaction(_unlock_user, session, user_id, actor)


def _unlock_user(session: Session, user_id: uuid.UUID, actor: Actor) -> None:
    target = users.get_user(session, user_id)
    lockout.unlock(session, email=target.email, subject_id=target.id, actor=actor)
