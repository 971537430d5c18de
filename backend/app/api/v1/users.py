"""/users: the caller's own profile, and other users as the permission matrix allows."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from starlette.concurrency import run_in_threadpool

from app.api.deps import ActorDep, CallerDep, CurrentUser, SessionDep, require
from app.api.errors import Responses
from app.api.v1.auth import REAUTHENTICATION
from app.auth import lockout, profile, verification
from app.core.passwords import hash_password
from app.core.permissions import Permission, Role, can_read_user, can_update_user
from app.crud import users
from app.errors import BadRequest, Forbidden
from app.models.common import Page
from app.models.user import UserRead, UserUpdate, UserUpdateMe

router = APIRouter(prefix="/users", tags=["users"])

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


@router.get("/me", response_model=UserRead, responses=AUTH_ERRORS)
async def read_me(caller: CallerDep) -> UserRead:
    return caller.user


@router.patch(
    "/me",
    response_model=UserRead,
    responses={**AUTH_ERRORS, **EMAIL_CHANGE, **CONFLICT},
)
async def update_me(
    body: UserUpdateMe, user: CurrentUser, session: SessionDep, actor: ActorDep
) -> UserRead:
    changes = body.model_dump(exclude_unset=True)
    return UserRead.model_validate(
        await profile.update_own(session, user=user, changes=changes, actor=actor)
    )


@router.get(
    "",
    response_model=Page[UserRead],
    responses=AUTH_ERRORS,
    dependencies=[Depends(require(Permission.USERS_READ))],
)
def list_users(
    session: SessionDep,
    skip: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    role: Role | None = None,
    is_active: bool | None = None,
    q: Annotated[str | None, Query(max_length=320)] = None,
) -> Page[UserRead]:
    items, total = users.list_users(
        session, skip=skip, limit=limit, role=role, is_active=is_active, q=q
    )
    return Page[UserRead](items=items, total=total, skip=skip, limit=limit)


@router.get("/{user_id}", response_model=UserRead, responses={**AUTH_ERRORS, **NOT_FOUND})
def read_user(user_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> UserRead:
    if not can_read_user(user.role, is_self=user.id == user_id):
        raise Forbidden()
    return UserRead.model_validate(users.get_user(session, user_id))


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    responses={**AUTH_ERRORS, **NOT_FOUND, **EMAIL_CHANGE, **CONFLICT},
)
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, user: CurrentUser, session: SessionDep, actor: ActorDep
) -> UserRead:
    changes = body.model_dump(exclude_unset=True)
    is_self = user.id == user_id
    if not can_update_user(user.role, is_self=is_self, fields=set(changes)):
        raise Forbidden()
    if is_self:  # as PATCH /users/me: a new email is pending, the password has its endpoint
        if "password" in changes:
            raise BadRequest("Change your own password with POST /users/me/password")
        updated = await profile.update_own(session, user=user, changes=changes, actor=actor)
        return UserRead.model_validate(updated)
    changes.pop("current_password", None)
    target = await run_in_threadpool(users.get_user, session, user_id)
    await run_in_threadpool(session.commit)  # no transaction stays open while hashing
    password = changes.pop("password", None)
    hashed = await hash_password(password) if password else None
    old_email = target.email
    updated = await run_in_threadpool(
        users.update_user,
        session,
        user=target,
        changes=changes,
        actor=actor,
        hashed_password=hashed,
    )
    await run_in_threadpool(
        verification.email_set_by_admin, session, user=updated, old_email=old_email
    )
    return UserRead.model_validate(updated)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, **NOT_FOUND, **CONFLICT},
    dependencies=[Depends(require(Permission.USERS_DELETE))],
)
def delete_user(user_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> None:
    users.delete_user(session, user=users.get_user(session, user_id), actor=actor)


@router.post(
    "/{user_id}/unlock",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, **NOT_FOUND},
    dependencies=[Depends(require(Permission.USERS_UNLOCK))],
)
def unlock_user(user_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> None:
    target = users.get_user(session, user_id)
    lockout.unlock(session, email=target.email, subject_id=target.id, actor=actor)
