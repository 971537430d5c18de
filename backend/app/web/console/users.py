"""The console's Users and User pages, and every change an admin makes to an account, each
through the helper the API and the CLI use (so the same rules and audit events apply)."""

import uuid
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.auth import lockout, mfa, tokens, user_sessions
from app.core.permissions import Permission, Role
from app.crud import audit, authz, organizations, passkeys, sessions, users
from app.crud import console as console_rows
from app.db import transaction
from app.errors import BadRequest, DomainError, LastAdmin, NotFound
from app.models.audit import AuditEvent
from app.models.authz import RoleRead, RoleRef
from app.models.common import PageCursor
from app.models.organization import MyOrganization
from app.models.passkey import Passkey
from app.models.session import AuthSession
from app.models.user import User
from app.web.console.access import Console, ConsoleDep, PostDep, need, refused, render
from app.web.console.authz_forms import role_choices, role_ids
from app.web.console.paging import MAX_TRAIL, PAGE_SIZE, KeysetWindow, keyset_window

router = APIRouter(prefix="/admin")

MAX_QUERY = 320
HISTORY_SIZE = 20
MEMBERSHIPS_SIZE = 100
ACTIVE_FILTER = {"": None, "true": True, "false": False}
DONE = {
    "role": "Role saved.",
    "activated": "User activated: they can sign in again.",
    "deactivated": "User deactivated: their sessions have ended.",
    "unlocked": "Unlocked: their failed logins are forgotten.",
    "mfa": "Two-factor authentication is off; their recovery codes no longer work.",
    "mfa-none": "They had no two-factor authentication: nothing changed.",
    "revoked": "Session revoked.",
    "signed-out": "Every session of this user has ended.",
    "deleted": "User deleted.",
    "roles": "Roles saved.",
}


def _role(value: str) -> Role | None:
    if not value:
        return None
    try:
        return Role(value)
    except ValueError:
        raise BadRequest("Choose the role user, moderator or admin.") from None


@router.get("")
@router.get("/")
@router.get("/users")
def users_page(
    request: Request,
    session: SessionDep,
    console: ConsoleDep,
    q: str = "",
    role: str = "",
    active: str = "",
    cursor: str = "",
    back: str = "",
    done: str = "",
) -> Response:
    q = q.strip()[:MAX_QUERY]
    try:
        role_filter = _role(role)
        if active not in ACTIVE_FILTER:
            raise BadRequest("Active is yes, no or any.")
        page = transaction(
            _users_window,
            session,
            cursor=cursor[:64],
            back=back[: 65 * MAX_TRAIL],
            role=role_filter,
            is_active=ACTIVE_FILTER[active],
            q=q or None,
        )
    except BadRequest as error:
        raise refused(request, error.detail, console=console, status_code=400) from None
    filters = {"q": q, "role": role, "active": active}

    def link(to: dict[str, str] | None) -> str | None:
        if to is None:
            return None
        query = {name: value for name, value in {**filters, **to}.items() if value}
        return "/admin/users?" + urlencode(query)

    return render(
        request,
        "users.html",
        console=console,
        page=page,
        filters=filters,
        roles=list(Role),
        next_url=link(page.next_query),
        previous_url=link(page.previous_query),
        status=DONE.get(done),
    )


def _users_window(
    session: Session,
    *,
    cursor: str,
    back: str,
    role: Role | None,
    is_active: bool | None,
    q: str | None,
) -> KeysetWindow[Any]:
    def fetch(after: PageCursor | None) -> tuple[list[Any], int, str | None]:
        page = users.list_users(
            session, limit=PAGE_SIZE, role=role, is_active=is_active, q=q, after=after
        )
        return page.items, page.total, page.next.encode() if page.next else None

    return keyset_window(cursor, back, fetch)


def _user_id(request: Request, console: Console, raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise refused(request, "No such user.", console=console, status_code=404) from None


def _target(request: Request, session: SessionDep, console: Console, user_id: uuid.UUID) -> User:
    try:
        return transaction(users.get_user, session, user_id)
    except NotFound:
        raise refused(request, "No such user.", console=console, status_code=404) from None


def _user_page(
    request: Request,
    session: SessionDep,
    console: Console,
    target: User,
    *,
    status: str | None = None,
    alert: str | None = None,
    status_code: int = 200,
    confirm_delete: bool = False,
) -> Response:
    controls = console.controls(target.id)
    live, keys, history, names = transaction(_activity, session, target.id, controls.history)
    authz_view = None
    if console.can(Permission.AUTHZ_MANAGE):
        authz_view = transaction(_authz_of, session, target.id)
    return render(
        request,
        "user.html",
        console=console,
        status_code=status_code,
        target=target,
        controls=controls,
        sessions=live,
        passkeys=keys,
        history=history,
        names=names,
        roles=list(Role),
        status=status,
        alert=alert,
        confirm_delete=confirm_delete and controls.delete,
        authz=authz_view,
    )


@router.get("/users/{user_id}")
def user_page(
    request: Request,
    session: SessionDep,
    console: ConsoleDep,
    user_id: str,
    done: str = "",
    confirm: str = "",
) -> Response:
    target = _target(request, session, console, _user_id(request, console, user_id))
    return _user_page(
        request,
        session,
        console,
        target,
        status=DONE.get(done),
        confirm_delete=confirm == "delete",
    )


def _activity(
    session: Session, user_id: uuid.UUID, with_history: bool
) -> tuple[list[AuthSession], list[Passkey], list[AuditEvent], dict[uuid.UUID, str]]:
    """A user's live sessions, passkeys and (`with_history`) latest audit events, with the
    emails of those events' actors."""
    live = sessions.live_sessions(session, user_id)
    keys = passkeys.of_user(session, user_id)
    history: list[AuditEvent] = []
    names: dict[uuid.UUID, str] = {}
    if with_history:
        history, _ = audit.list_events(session, skip=0, limit=HISTORY_SIZE, subject_id=user_id)
        names = console_rows.emails_by_id(session, (event.actor_id for event in history))
    return live, keys, history, names


@dataclass(frozen=True, slots=True)
class AuthzView:
    """A user's product roles (global) and memberships, and the roles an admin may assign."""

    roles: list[RoleRef]
    choices: list[RoleRead]
    memberships: list[MyOrganization]
    memberships_total: int


def _authz_of(session: Session, user_id: uuid.UUID) -> AuthzView:
    memberships = organizations.my_organizations(
        session, user_id=user_id, limit=MEMBERSHIPS_SIZE, after=None
    )
    return AuthzView(
        roles=authz.user_roles(session, user_id),
        choices=role_choices(session),
        memberships=memberships.items,
        memberships_total=memberships.total,
    )


def _done(user_id: uuid.UUID, what: str) -> RedirectResponse:
    return RedirectResponse(f"/admin/users/{user_id}?done={what}", status_code=303)


@router.post("/users/{user_id}/role")
def set_role(
    request: Request,
    session: SessionDep,
    console: PostDep,
    user_id: str,
    role: Annotated[str, Form()] = "",
) -> Response:
    target_id = _user_id(request, console, user_id)
    need(request, console, console.controls(target_id).set_role)
    target = _target(request, session, console, target_id)
    try:
        new_role = _role(role)
        if new_role is None:
            raise BadRequest("Choose the role user, moderator or admin.")
        transaction(
            users.update_user,
            session,
            user=target,
            changes={"role": new_role},
            actor=console.actor(request),
        )
    except BadRequest as error:
        return _user_page(request, session, console, target, alert=error.detail, status_code=400)
    except LastAdmin as error:
        return _user_page(request, session, console, target, alert=error.detail, status_code=409)
    return _done(target.id, "role")


@router.post("/users/{user_id}/active")
def set_active(
    request: Request,
    session: SessionDep,
    console: PostDep,
    user_id: str,
    active: Annotated[str, Form()] = "",
) -> Response:
    target_id = _user_id(request, console, user_id)
    need(request, console, console.controls(target_id).set_active)
    target = _target(request, session, console, target_id)
    if active not in ("true", "false"):
        alert = "Choose Activate or Deactivate."
        return _user_page(request, session, console, target, alert=alert, status_code=400)
    try:
        transaction(
            users.update_user,
            session,
            user=target,
            changes={"is_active": active == "true"},
            actor=console.actor(request),
        )
    except LastAdmin as error:
        return _user_page(request, session, console, target, alert=error.detail, status_code=409)
    return _done(target.id, "activated" if active == "true" else "deactivated")


@router.post("/users/{user_id}/unlock")
def unlock(request: Request, session: SessionDep, console: PostDep, user_id: str) -> Response:
    target_id = _user_id(request, console, user_id)
    need(request, console, console.controls(target_id).unlock)
    target = _target(request, session, console, target_id)
    actor = console.actor(request)
    transaction(lockout.unlock, session, email=target.email, subject_id=target.id, actor=actor)
    return _done(target.id, "unlocked")


@router.post("/users/{user_id}/mfa/reset")
def reset_mfa(request: Request, session: SessionDep, console: PostDep, user_id: str) -> Response:
    target_id = _user_id(request, console, user_id)
    need(request, console, console.controls(target_id).reset_mfa)
    target = _target(request, session, console, target_id)
    was_enabled = transaction(mfa.reset, session, user=target, actor=console.actor(request))
    return _done(target.id, "mfa" if was_enabled else "mfa-none")


@router.post("/users/{user_id}/sessions/{session_id}/revoke")
def revoke_session(
    request: Request, session: SessionDep, console: PostDep, user_id: str, session_id: str
) -> Response:
    target_id = _user_id(request, console, user_id)
    need(request, console, console.controls(target_id).end_sessions)
    target = _target(request, session, console, target_id)
    try:
        transaction(
            user_sessions.end_session,
            session,
            user_id=target.id,
            session_id=uuid.UUID(session_id),
            actor=console.actor(request),
        )
    except (ValueError, NotFound):
        alert = "This session has already ended."
        return _user_page(request, session, console, target, alert=alert, status_code=404)
    return _done(target.id, "revoked")


@router.post("/users/{user_id}/sessions/revoke-all")
def sign_out_everywhere(
    request: Request, session: SessionDep, console: PostDep, user_id: str
) -> Response:
    target_id = _user_id(request, console, user_id)
    need(request, console, console.controls(target_id).end_sessions)
    target = _target(request, session, console, target_id)
    transaction(tokens.logout_all, session, user=target, actor=console.actor(request))
    return _done(target.id, "signed-out")


@router.post("/users/{user_id}/delete")
def delete_user(request: Request, session: SessionDep, console: PostDep, user_id: str) -> Response:
    target_id = _user_id(request, console, user_id)
    need(request, console, console.controls(target_id).delete)
    target = _target(request, session, console, target_id)
    try:
        transaction(users.delete_user, session, user=target, actor=console.actor(request))
    except LastAdmin as error:
        return _user_page(request, session, console, target, alert=error.detail, status_code=409)
    return RedirectResponse("/admin/users?done=deleted", status_code=303)


@router.post("/users/{user_id}/product-roles")
def set_product_roles(
    request: Request,
    session: SessionDep,
    console: PostDep,
    user_id: str,
    role: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Replace the user's global roles of the product (AUTHZ.md) with the checked ones."""
    target_id = _user_id(request, console, user_id)
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    target = _target(request, session, console, target_id)
    try:
        transaction(
            authz.set_user_roles,
            session,
            user_id=target.id,
            role_ids=role_ids(role),
            actor=console.actor(request),
        )
    except DomainError as error:
        return _user_page(
            request, session, console, target, alert=error.detail, status_code=error.status
        )
    return _done(target.id, "roles")
