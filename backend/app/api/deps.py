"""Dependencies declared once: the database session, the caller, and permission checks.

The caller's dependencies are async: the token check does its one worker-thread hop itself
(auth.tokens.authenticate), and the rest is pure, so none of them costs a thread hop."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session

from app.auth.tokens import authenticate
from app.core.config import get_settings
from app.core.permissions import Permission, has_permission
from app.crud.audit import Actor
from app.db import get_session
from app.errors import Forbidden, InvalidToken
from app.models.session import AuthSession
from app.models.user import User

SessionDep = Annotated[Session, Depends(get_session)]

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl=f"{get_settings().API_V1_STR}/auth/login", auto_error=False
)


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    session: AuthSession


async def get_principal(token: Annotated[str | None, Depends(oauth2_scheme)]) -> Principal:
    """The caller, read from the database on every request (see auth.tokens.authenticate).

    The user and session rows come from a session of their own, already closed: handlers
    that write use their SessionDep, as they always did."""
    if token is None:
        raise InvalidToken("Not authenticated")
    user, auth_session = await authenticate(token)
    return Principal(user=user, session=auth_session)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_current_user(principal: PrincipalDep) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require(permission: Permission) -> Callable[[User], Awaitable[User]]:
    """A dependency that lets through only callers whose role holds `permission`."""

    async def check(user: CurrentUser) -> User:
        if not has_permission(user.role, permission):
            raise Forbidden()
        return user

    return check


def client_actor(request: Request, user: User | None = None) -> Actor:
    return Actor(
        user_id=user.id if user else None,
        ip=request.client.host if request.client else None,
        user_agent=(request.headers.get("user-agent") or "")[:512] or None,
    )


async def get_anonymous_actor(request: Request) -> Actor:
    return client_actor(request)


async def get_actor(request: Request, user: CurrentUser) -> Actor:
    return client_actor(request, user)


AnonymousActor = Annotated[Actor, Depends(get_anonymous_actor)]
ActorDep = Annotated[Actor, Depends(get_actor)]
