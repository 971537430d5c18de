"""The console's API resources (admins: authz:manage): the list (the built-in resource first,
read-only), a form to create one, and each resource's page to rename it, replace its
permissions or delete it, through the steps of crud/authz.py."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.core.permissions import Permission
from app.crud import authz
from app.db import transaction
from app.errors import DomainError, NotFound
from app.models.authz import (
    MAX_PERMISSIONS_PER_RESOURCE,
    ResourceCreate,
    ResourceRead,
    ResourceUpdate,
)
from app.web.console.access import Console, ConsoleDep, PostDep, need, refused, render
from app.web.console.authz_forms import PAGE_SIZE, Refusal, attempt, list_page, parse_id

router = APIRouter(prefix="/admin")

MAX_TEXT = MAX_PERMISSIONS_PER_RESOURCE * 600
LABELS = {"identifier": "Identifier", "name": "Name", "permissions": "Permissions"}
DONE = {
    "created": "Resource created.",
    "saved": "Resource saved.",
    "deleted": "Resource deleted: its permissions have left every role.",
}


def permission_lines(text: str) -> list[dict[str, str]]:
    """The permissions of the form's text: one a line, `name` or `name = description`."""
    lines = []
    for line in text[:MAX_TEXT].splitlines():
        name, _, description = line.partition("=")
        if name.strip() or description.strip():
            lines.append({"name": name.strip(), "description": description.strip()})
    return lines


def permission_text(resource: ResourceRead) -> str:
    return "\n".join(
        f"{p.name} = {p.description}" if p.description else p.name for p in resource.permissions
    )


def _list_page(request: Request, session: SessionDep, console: Console, **context: Any) -> Response:
    context.setdefault("form", {})
    return list_page(
        request,
        session,
        console,
        template="resources.html",
        path="/admin/resources",
        fetch=lambda db, after: authz.list_resources(db, limit=PAGE_SIZE, after=after),
        **context,
    )


@router.get("/resources")
def resources_page(
    request: Request,
    session: SessionDep,
    console: ConsoleDep,
    cursor: str = "",
    back: str = "",
    done: str = "",
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    return _list_page(request, session, console, cursor=cursor, back=back, status=DONE.get(done))


@router.post("/resources")
def create_resource(
    request: Request,
    session: SessionDep,
    console: PostDep,
    identifier: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    permissions: Annotated[str, Form()] = "",
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    form = {"identifier": identifier[:2048], "name": name[:200], "permissions": permissions}

    def create() -> ResourceRead:
        body = ResourceCreate.model_validate(
            {
                "identifier": identifier.strip(),
                "name": name.strip(),
                "permissions": permission_lines(permissions),
            }
        )
        return transaction(authz.create_resource, session, body=body, actor=console.actor(request))

    created = attempt(create, LABELS, "Resource")
    if isinstance(created, Refusal):
        return _list_page(
            request,
            session,
            console,
            alert=created.alert,
            form=form,
            status_code=created.status_code,
        )
    return RedirectResponse(f"/admin/resources/{created.id}?done=created", status_code=303)


def _resource_id(request: Request, console: Console, raw: str) -> uuid.UUID:
    resource_id = parse_id(raw)
    if resource_id is None:
        raise refused(request, "No such resource.", console=console, status_code=404)
    return resource_id


def _resource(
    request: Request, session: SessionDep, console: Console, resource_id: uuid.UUID
) -> ResourceRead:
    try:
        return transaction(authz.get_resource, session, resource_id)
    except NotFound:
        raise refused(request, "No such resource.", console=console, status_code=404) from None


def _detail(
    request: Request,
    session: SessionDep,
    console: Console,
    resource: ResourceRead,
    *,
    alert: str | None = None,
    status: str | None = None,
    form: dict[str, Any] | None = None,
    confirm_delete: bool = False,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "resource.html",
        console=console,
        status_code=status_code,
        resource=resource,
        form=form or {"name": resource.name, "permissions": permission_text(resource)},
        alert=alert,
        status=status,
        confirm_delete=confirm_delete and not resource.builtin,
    )


@router.get("/resources/{resource_id}")
def resource_page(
    request: Request,
    session: SessionDep,
    console: ConsoleDep,
    resource_id: str,
    done: str = "",
    confirm: str = "",
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    resource = _resource(request, session, console, _resource_id(request, console, resource_id))
    return _detail(
        request,
        session,
        console,
        resource,
        status=DONE.get(done),
        confirm_delete=confirm == "delete",
    )


@router.post("/resources/{resource_id}")
def update_resource(
    request: Request,
    session: SessionDep,
    console: PostDep,
    resource_id: str,
    name: Annotated[str, Form()] = "",
    permissions: Annotated[str, Form()] = "",
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    resource = _resource(request, session, console, _resource_id(request, console, resource_id))
    form = {"name": name[:200], "permissions": permissions}

    def update() -> ResourceRead:
        body = ResourceUpdate.model_validate(
            {"name": name.strip(), "permissions": permission_lines(permissions)}
        )
        return transaction(
            authz.update_resource,
            session,
            resource_id=resource.id,
            body=body,
            actor=console.actor(request),
        )

    updated = attempt(update, LABELS, "Resource")
    if isinstance(updated, Refusal):
        return _detail(
            request,
            session,
            console,
            resource,
            alert=updated.alert,
            form=form,
            status_code=updated.status_code,
        )
    return RedirectResponse(f"/admin/resources/{resource.id}?done=saved", status_code=303)


@router.post("/resources/{resource_id}/delete")
def delete_resource(
    request: Request, session: SessionDep, console: PostDep, resource_id: str
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    resource = _resource(request, session, console, _resource_id(request, console, resource_id))
    try:
        transaction(
            authz.delete_resource, session, resource_id=resource.id, actor=console.actor(request)
        )
    except DomainError as error:
        return _detail(
            request, session, console, resource, alert=error.detail, status_code=error.status
        )
    return RedirectResponse("/admin/resources?done=deleted", status_code=303)
