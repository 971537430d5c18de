"""The console's roles of the product (admins: authz:manage): the list, a form to create one
(its permissions as checkboxes grouped by resource), and each role's page to edit or delete
it, through the steps of crud/authz.py."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.core.permissions import Permission
from app.crud import authz
from app.db import transaction
from app.errors import NotFound
from app.models.authz import MAX_PERMISSIONS_PER_ROLE, RoleCreate, RoleRead, RoleUpdate
from app.web.console.access import Console, ConsoleDep, PostDep, need, refused, render
from app.web.console.authz_forms import (
    PAGE_SIZE,
    Refusal,
    ResourceChoice,
    attempt,
    list_page,
    parse_id,
    resource_choices,
)

router = APIRouter(prefix="/admin")

LABELS = {"name": "Name", "description": "Description", "permissions": "Permissions"}
DONE = {
    "created": "Role created.",
    "saved": "Role saved.",
    "deleted": "Role deleted: every assignment of it is gone.",
}


def _permissions(values: list[str] | None) -> list[dict[str, str]]:
    """The checked permissions, each `identifier name` (an identifier has no space); more
    than a role may hold are left for the role's validation to refuse (422)."""
    raw = (values or [])[: MAX_PERMISSIONS_PER_ROLE * 2]
    chosen = []
    for value in dict.fromkeys(raw):
        resource, _, name = value.partition(" ")
        chosen.append({"resource": resource, "name": name})
    return chosen


def _form(name: str, description: str, permissions: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "name": name[:64],
        "description": description[:500],
        "permissions": {f"{p['resource']} {p['name']}" for p in permissions},
    }


def _list_page(request: Request, session: SessionDep, console: Console, **context: Any) -> Response:
    context.setdefault("form", {"permissions": set()})
    return list_page(
        request,
        session,
        console,
        template="roles.html",
        path="/admin/roles",
        fetch=lambda db, after: authz.list_roles(db, limit=PAGE_SIZE, after=after),
        choices=transaction(resource_choices, session),
        **context,
    )


@router.get("/roles")
def roles_page(
    request: Request,
    session: SessionDep,
    console: ConsoleDep,
    cursor: str = "",
    back: str = "",
    done: str = "",
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    return _list_page(request, session, console, cursor=cursor, back=back, status=DONE.get(done))


@router.post("/roles")
def create_role(
    request: Request,
    session: SessionDep,
    console: PostDep,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    permission: Annotated[list[str] | None, Form()] = None,
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    chosen = _permissions(permission)
    form = _form(name, description, chosen)

    def create() -> RoleRead:
        body = RoleCreate.model_validate(
            {"name": name.strip(), "description": description.strip(), "permissions": chosen}
        )
        return transaction(authz.create_role, session, body=body, actor=console.actor(request))

    created = attempt(create, LABELS, "Role")
    if isinstance(created, Refusal):
        return _list_page(
            request,
            session,
            console,
            alert=created.alert,
            form=form,
            status_code=created.status_code,
        )
    return RedirectResponse(f"/admin/roles/{created.id}?done=created", status_code=303)


def _role(request: Request, session: SessionDep, console: Console, raw: str) -> RoleRead:
    role_id = parse_id(raw)
    try:
        if role_id is None:
            raise NotFound()
        return transaction(_read, session, role_id)
    except NotFound:
        raise refused(request, "No such role.", console=console, status_code=404) from None


def _read(session: Session, role_id: uuid.UUID) -> RoleRead:
    return authz.role_read(session, authz.get_role(session, role_id))


def _detail(
    request: Request,
    session: SessionDep,
    console: Console,
    role: RoleRead,
    *,
    alert: str | None = None,
    status: str | None = None,
    form: dict[str, Any] | None = None,
    confirm_delete: bool = False,
    status_code: int = 200,
) -> Response:
    choices: list[ResourceChoice] = transaction(resource_choices, session)
    held = [p.model_dump() for p in role.permissions]
    return render(
        request,
        "role.html",
        console=console,
        status_code=status_code,
        role=role,
        choices=choices,
        form=form or _form(role.name, role.description, held),
        alert=alert,
        status=status,
        confirm_delete=confirm_delete,
    )


@router.get("/roles/{role_id}")
def role_page(
    request: Request,
    session: SessionDep,
    console: ConsoleDep,
    role_id: str,
    done: str = "",
    confirm: str = "",
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    role = _role(request, session, console, role_id)
    return _detail(
        request, session, console, role, status=DONE.get(done), confirm_delete=confirm == "delete"
    )


@router.post("/roles/{role_id}")
def update_role(
    request: Request,
    session: SessionDep,
    console: PostDep,
    role_id: str,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    permission: Annotated[list[str] | None, Form()] = None,
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    role = _role(request, session, console, role_id)
    chosen = _permissions(permission)
    form = _form(name, description, chosen)

    def update() -> RoleRead:
        body = RoleUpdate.model_validate(
            {"name": name.strip(), "description": description.strip(), "permissions": chosen}
        )
        return transaction(
            authz.update_role, session, role_id=role.id, body=body, actor=console.actor(request)
        )

    updated = attempt(update, LABELS, "Role")
    if isinstance(updated, Refusal):
        return _detail(
            request,
            session,
            console,
            role,
            alert=updated.alert,
            form=form,
            status_code=updated.status_code,
        )
    return RedirectResponse(f"/admin/roles/{role.id}?done=saved", status_code=303)


@router.post("/roles/{role_id}/delete")
def delete_role(request: Request, session: SessionDep, console: PostDep, role_id: str) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    role = _role(request, session, console, role_id)
    try:
        transaction(authz.delete_role, session, role_id=role.id, actor=console.actor(request))
    except NotFound:
        raise refused(request, "No such role.", console=console, status_code=404) from None
    return RedirectResponse("/admin/roles?done=deleted", status_code=303)
