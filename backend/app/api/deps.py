"""Dependencies declared once: the database session, the caller, and permission checks.

Every authenticated request reads the caller (CallerDep: profile, role, session state) from
the database, cheaply and without a thread hop on SQLite; handlers that change the user or
the session take CurrentUser or PrincipalDep, which load them into the request's session."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlmodel import Session

from app.auth.tokens import Caller, authenticate, load_caller
from app.core.config import get_settings
from app.core.permissions import Permission, Scope, has_permission
from app.crud.audit import Actor
from app.db import get_session, transaction
from app.errors import Forbidden, FreshLoginRequired, InsufficientScope, InvalidToken
from app.models.session import AuthSession
from app.models.user import User
from app.web import i18n as web_i18n

SessionDep = Annotated[Session, Depends(get_session)]


class BearerCaller(OAuth2PasswordBearer):
    """The bearer-token scheme (in OpenAPI, with Swagger's Authorize) that resolves straight
    to the caller, read from the database on every request (see auth.tokens.authenticate):
    one dependency on the hot path, not a token dependency and a caller dependency."""

    async def __call__(self, request: Request) -> Caller:  # type: ignore[override]
        return await request_caller(request)


async def request_caller(request: Request) -> Caller:
    """The caller of a request with `Authorization: Bearer <access token>` (else 401): what
    CallerDep resolves to. GET /users/me calls it directly (see api/v1/users.py)."""
    authorization = request.headers.get("authorization")
    scheme, token = get_authorization_scheme_param(authorization)
    if not authorization or scheme.lower() != "bearer":
        raise InvalidToken("Not authenticated")
    return await authenticate(token)


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    session: AuthSession
    scope: frozenset[str] | None = None  # the OAuth access token's (see Caller)


get_caller = BearerCaller(
    tokenUrl=f"{get_settings().API_V1_STR}/auth/login",
    scheme_name="OAuth2PasswordBearer",  # the name clients and the docs already know
    auto_error=False,
)
CallerDep = Annotated[Caller, Depends(get_caller)]
# The OpenAPI security of a route that reads the caller itself (request_caller), as
# CallerDep's routes have it: Swagger's Authorize then sends the token to it too.
BEARER_SECURITY: dict[str, Any] = {"security": [{get_caller.scheme_name: []}]}


def authorize(caller: Caller, allowed: Callable[[Scope], bool], needed: set[Permission]) -> None:
    """The one rule for what a caller may do: `allowed(scope)` decides, on the caller's role
    and, for an OAuth access token, its scope. Refused by the scope alone (the role would
    allow it), the answer is RFC 6750's insufficient_scope naming `needed`; else 403."""
    if allowed(caller.scope):
        return
    if caller.scope is not None and allowed(None):
        raise InsufficientScope({str(permission) for permission in needed})
    raise Forbidden()


def check_permission(caller: Caller, permission: Permission) -> Caller:
    """The caller, if its role holds `permission` (and an OAuth access token's scope names it)."""
    role = caller.user.role
    authorize(caller, lambda scope: has_permission(role, permission, scope), {permission})
    return caller


def require_account(caller: Caller) -> Caller:
    """The caller acting on their own account (/users/me and below): an OAuth access token
    must name `account` in its scope."""
    return check_permission(caller, Permission.ACCOUNT)


def get_any_principal(caller: CallerDep, session: SessionDep) -> Principal:
    """The caller's user and session as ORM objects, whatever its token may do: for routes
    that decide themselves (PATCH /users/{id}); the others take PrincipalDep."""
    # A read in a transaction of its own: it ends now, not after the response.
    user, auth_session = transaction(load_caller, session, caller)
    return Principal(user=user, session=auth_session, scope=caller.scope)


AnyPrincipal = Annotated[Principal, Depends(get_any_principal)]


async def get_principal(caller: CallerDep, principal: AnyPrincipal) -> Principal:
    require_account(caller)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_current_user(principal: PrincipalDep) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(get_current_user)]


def ensure_credentials_changeable(scope: Scope) -> None:
    """A credential (password, email, TOTP, passkey) is added or changed only with a token of a
    password or passkey login (/auth/*): never with an OAuth access token, which a code
    exchange gives, perhaps from single sign-on with no login at all (OIDC.md, revision 2)."""
    if scope is not None:
        raise FreshLoginRequired()


async def get_credential_principal(principal: PrincipalDep) -> Principal:
    ensure_credentials_changeable(principal.scope)
    return principal


CredentialPrincipal = Annotated[Principal, Depends(get_credential_principal)]


def require(permission: Permission) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that lets through only callers whose role holds `permission` (and, with an
    OAuth access token, whose scope names it)."""

    async def check(caller: CallerDep) -> Caller:
        return check_permission(caller, permission)

    return check


def client_actor(request: Request, user_id: uuid.UUID | None = None) -> Actor:
    return Actor(
        user_id=user_id,
        ip=request.client.host if request.client else None,
        user_agent=(request.headers.get("user-agent") or "")[:512] or None,
        language=web_i18n.preference(request),
    )


async def get_anonymous_actor(request: Request) -> Actor:
    return client_actor(request)


async def get_actor(request: Request, caller: CallerDep) -> Actor:
    return client_actor(request, caller.user.id)


AnonymousActor = Annotated[Actor, Depends(get_anonymous_actor)]
ActorDep = Annotated[Actor, Depends(get_actor)]
