"""The console's OAuth clients page (admins: clients:manage): the registered clients, a form
to register one (a confidential client's secret shown once), and deletion with a confirm; and
what the client page (client.py) shares with it: the form's words and choices."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.core.permissions import Permission
from app.crud import clients
from app.crud.audit import Actor
from app.crud.console import CONSOLE_CLIENT_ID
from app.db import transaction
from app.models.authz import ResourceRead
from app.models.client import (
    DEFAULT_GRANTS,
    MAX_CLIENT_RESOURCES,
    ClientCreate,
    ClientCreated,
    ClientRead,
    GrantType,
    OrganizationUsage,
)
from app.web.console.access import Console, ConsoleDep, PostDep, need, render
from app.web.console.authz_forms import Refusal, attempt, resource_choices

router = APIRouter(prefix="/admin")

LIST_SIZE = 200
MAX_NAME = 255
MAX_URIS_TEXT = 32 * 2100
DONE = {"deleted": "Client deleted: its sessions and tokens no longer work."}
# The form's fields by the labels people read, for the first problem's message.
LABELS = {
    "name": "Name",
    "redirect_uris": "Redirect URIs",
    "post_logout_redirect_uris": "Post-logout redirect URIs",
    "grant_types": "Grants",
    "scopes": "Scopes",
    "id_token_signed_response_alg": "ID token signature",
    "resources": "Resources",
    "organization_usage": "Organizations",
}
# What each `organization_usage` means to the people who choose it (AUTHZ.md, "Tokens").
ORGANIZATION_USAGE = {
    OrganizationUsage.NONE.value: "No: a sign-in is not for an organization",
    OrganizationUsage.ALLOW.value: "Allowed: a sign-in may name one of the user's organizations",
    OrganizationUsage.REQUIRE.value: (
        "Required: a sign-in is always for one; the user picks it when the app names none"
    ),
}


def uri_lines(text: str) -> list[str]:
    """The URIs of a text area, one a line."""
    return [line.strip() for line in text[:MAX_URIS_TEXT].splitlines() if line.strip()]


def checked(values: list[str] | None, most: int) -> list[str]:
    """A checkbox group's values, distinct, at most `most` + 1 of them (so a limit of `most`
    is still refused by the model, without validating thousands of forged values)."""
    return list(dict.fromkeys(values or []))[: most + 1]


def resource_options(session: Session) -> list[ResourceRead]:
    """The API resources a client may be registered for: the built-in one (the issuer, which
    a client may name as `resource` too) and every custom one."""
    return [choice.resource for choice in resource_choices(session)]


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
    items, total, options = transaction(_listing, session)
    return render(
        request,
        "clients.html",
        console=console,
        status_code=status_code,
        clients=items,
        total=total,
        builtin=CONSOLE_CLIENT_ID,
        grants=list(GrantType),
        resources=options,
        usages=ORGANIZATION_USAGE,
        created=created,
        alert=alert,
        status=status,
        form=form or {"grants": [g.value for g in DEFAULT_GRANTS], "resources": []},
        confirm=confirm,
    )


def _listing(session: Session) -> tuple[list[ClientRead], int, list[ResourceRead]]:
    """The registered clients (the first LIST_SIZE), their number, and the resources."""
    items, total = clients.list_clients(session, skip=0, limit=LIST_SIZE)
    return items, total, resource_options(session)


@router.get("/clients")
def clients_page(
    request: Request, session: SessionDep, console: ConsoleDep, confirm: str = "", done: str = ""
) -> Response:
    need(request, console, console.can(Permission.CLIENTS_MANAGE))
    return _page(request, session, console, confirm=confirm[:64], status=DONE.get(done))


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
    resource: Annotated[list[str] | None, Form()] = None,
    organization_usage: Annotated[str, Form()] = OrganizationUsage.NONE.value,
) -> Response:
    need(request, console, console.can(Permission.CLIENTS_MANAGE))
    uris = uri_lines(redirect_uris)
    resources = checked(resource, MAX_CLIENT_RESOURCES)
    form: dict[str, Any] = {
        "name": name[:MAX_NAME],
        "redirect_uris": "\n".join(uris),
        "public": bool(public),
        "first_party": bool(first_party),
        "no_pkce": bool(no_pkce),
        "grants": grant or [],
        "resources": resources,
        "organization_usage": organization_usage[:16],
    }

    def run() -> ClientCreated:
        body = ClientCreate.model_validate(
            {
                "name": name.strip(),
                "redirect_uris": uris,
                "public": bool(public),
                "first_party": bool(first_party),
                "require_pkce": not no_pkce,
                "grant_types": grant or [],
                "resources": resources,
                "organization_usage": organization_usage,
            }
        )
        return transaction(clients.create_client, session, body=body, actor=console.actor(request))

    created = attempt(run, LABELS, "Client")
    if isinstance(created, Refusal):
        return _page(
            request,
            session,
            console,
            alert=created.alert,
            form=form,
            status_code=created.status_code,
        )
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
