"""The console's OAuth clients page (admins: clients:manage): the registered clients, a form
to register one (a confidential client's secret shown once), and deletion with a confirm."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.core.permissions import Permission
from app.crud import clients
from app.crud.audit import Actor
from app.crud.console import CONSOLE_CLIENT_ID
from app.db import transaction
from app.models.client import DEFAULT_GRANTS, ClientCreate, ClientCreated, GrantType
from app.web.console.access import Console, ConsoleDep, PostDep, need, render

router = APIRouter(prefix="/admin")

LIST_SIZE = 200
MAX_NAME = 255
MAX_URIS_TEXT = 32 * 2100
DONE = {"deleted": "Client deleted: its sessions and tokens no longer work."}


def _page(
    request: Request,
    session: SessionDep,
    console: Console,
    *,
    created: ClientCreated | None = None,
    alert: str | None = None,
    status: str | None = None,
    form: dict[str, object] | None = None,
    confirm: str = "",
    status_code: int = 200,
) -> Response:
    items, total = transaction(clients.list_clients, session, skip=0, limit=LIST_SIZE)
    response = render(
        request,
        "clients.html",
        console=console,
        status_code=status_code,
        clients=items,
        total=total,
        builtin=CONSOLE_CLIENT_ID,
        grants=list(GrantType),
        created=created,
        alert=alert,
        status=status,
        form=form or {"grants": [g.value for g in DEFAULT_GRANTS]},
        confirm=confirm,
    )
    return response


@router.get("/clients")
def clients_page(
    request: Request, session: SessionDep, console: ConsoleDep, confirm: str = "", done: str = ""
) -> Response:
    need(request, console, console.can(Permission.CLIENTS_MANAGE))
    return _page(request, session, console, confirm=confirm[:64], status=DONE.get(done))


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = {"name": "Name", "redirect_uris": "Redirect URIs", "grant_types": "Grants"}.get(
        str(first["loc"][0]) if first["loc"] else "", "Client"
    )
    return f"{where}: {first['msg'].removeprefix('Value error, ')}"


@router.post("/clients")
def create_client(
    request: Request,
    session: SessionDep,
    console: PostDep,
    name: Annotated[str, Form()] = "",
    redirect_uris: Annotated[str, Form()] = "",
    public: Annotated[str, Form()] = "",
    first_party: Annotated[str, Form()] = "",
    no_pkce: Annotated[str, Form()] = "",
    grant: Annotated[list[str] | None, Form()] = None,
) -> Response:
    need(request, console, console.can(Permission.CLIENTS_MANAGE))
    uris = [line.strip() for line in redirect_uris[:MAX_URIS_TEXT].splitlines() if line.strip()]
    form = {
        "name": name[:MAX_NAME],
        "redirect_uris": "\n".join(uris),
        "public": bool(public),
        "first_party": bool(first_party),
        "no_pkce": bool(no_pkce),
        "grants": grant or [],
    }
    try:
        body = ClientCreate.model_validate(
            {
                "name": name.strip(),
                "redirect_uris": uris,
                "public": bool(public),
                "first_party": bool(first_party),
                "require_pkce": not no_pkce,
                "grant_types": grant or [],
            }
        )
    except ValidationError as error:
        return _page(
            request,
            session,
            console,
            alert=_first_problem(error),
            form=form,
            status_code=400,
        )
    created = transaction(clients.create_client, session, body=body, actor=console.actor(request))
    return _page(request, session, console, created=created, status_code=201)


@router.post("/clients/{client_id}/delete")
def delete_client(
    request: Request, session: SessionDep, console: PostDep, client_id: str
) -> Response:
    need(request, console, console.can(Permission.CLIENTS_MANAGE))
    if client_id == CONSOLE_CLIENT_ID:
        alert = "The console's own client is built in: it cannot be deleted."
        return _page(request, session, console, alert=alert, status_code=400)
    if not transaction(_delete, session, client_id, console.actor(request)):
        alert = "This client does not exist (deleted already?)."
        return _page(request, session, console, alert=alert, status_code=404)
    return RedirectResponse("/admin/clients?done=deleted", status_code=303)


def _delete(session: Session, client_id: str, actor: Actor) -> bool:
    """Delete the client `client_id`; False if there is none."""
    client = clients.get_client(session, client_id)
    if client is None:
        return False
    clients.delete_client(session, client=client, actor=actor)
    return True
