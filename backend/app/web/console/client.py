"""The console's page of one OAuth client (admins): its settings, a form for what the API's
PATCH changes (crud/clients.update_client), and a confidential client's product roles, whose
permissions its client_credentials tokens carry (crud/authz.set_client_roles, authz:manage).
The built-in console client is shown read-only; a forged change of it is 403."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.core.permissions import Permission
from app.crud import authz, clients
from app.crud.audit import Actor
from app.crud.console import CONSOLE_CLIENT_ID
from app.db import transaction
from app.models.authz import ResourceRead, RoleRead, RoleRef
from app.models.client import (
    CLIENT_SCOPES,
    MAX_CLIENT_RESOURCES,
    ClientRead,
    ClientUpdate,
    GrantType,
    OAuthClient,
)
from app.web.console.access import Console, ConsoleDep, PostDep, need, refused, render
from app.web.console.authz_forms import Refusal, attempt, role_choices, role_ids
from app.web.console.clients import (
    LABELS,
    MAX_NAME,
    ORGANIZATION_USAGE,
    checked,
    resource_options,
    uri_lines,
)

router = APIRouter(prefix="/admin")

ID_TOKEN_ALGS = ("RS256", "ES256")
# Lists whose order means nothing: compared as sets to find what a form changed.
UNORDERED = {"grant_types", "scopes", "resources"}
DONE = {
    "saved": "Client saved.",
    "unchanged": "Nothing to save: the settings were already so.",
    "roles": "Client roles saved: its next tokens carry their permissions.",
}
BUILT_IN = "The console's own client is built in: it cannot be changed here."


@dataclass(frozen=True, slots=True)
class ClientView:
    """A client as its page shows it: its settings, the resources it may be registered for,
    and (confidential, for authz:manage) its product roles and the roles it may be given."""

    client: ClientRead
    resources: list[ResourceRead]
    roles: list[RoleRef] | None
    role_choices: list[RoleRead]


def _view(session: Session, client_id: str, with_roles: bool) -> ClientView | None:
    row = clients.get_client(session, client_id)
    if row is None:
        return None
    holds = with_roles and not row.public
    return ClientView(
        client=clients.client_read(row),
        resources=resource_options(session),
        roles=authz.client_roles(session, client_id) if holds else None,
        role_choices=role_choices(session) if holds else [],
    )


def _settings_form(client: ClientRead) -> dict[str, Any]:
    return {
        "name": client.name,
        "redirect_uris": "\n".join(client.redirect_uris),
        "post_logout_redirect_uris": "\n".join(client.post_logout_redirect_uris),
        "first_party": client.first_party,
        "no_pkce": not client.require_pkce,
        "grants": [g.value for g in client.grant_types],
        "scopes": client.scopes,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "resources": client.resources,
        "organization_usage": client.organization_usage.value,
    }


def _page(
    request: Request,
    session: SessionDep,
    console: Console,
    client_id: str,
    *,
    alert: str | None = None,
    status: str | None = None,
    form: dict[str, Any] | None = None,
    chosen_roles: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    view = transaction(_view, session, client_id, console.can(Permission.AUTHZ_MANAGE))
    if view is None:
        raise refused(request, "No such client.", console=console, status_code=404)
    roles = view.roles or []
    return render(
        request,
        "client.html",
        console=console,
        status_code=status_code,
        view=view,
        client=view.client,
        builtin=view.client.client_id == CONSOLE_CLIENT_ID,
        resources=view.resources,
        usages=ORGANIZATION_USAGE,
        grants=list(GrantType),
        scopes=CLIENT_SCOPES,
        algs=ID_TOKEN_ALGS,
        form=form or _settings_form(view.client),
        chosen_roles=chosen_roles if chosen_roles is not None else [str(r.id) for r in roles],
        alert=alert,
        status=status,
    )


@router.get("/clients/{client_id}")
def client_page(
    request: Request, session: SessionDep, console: ConsoleDep, client_id: str, done: str = ""
) -> Response:
    need(request, console, console.can(Permission.CLIENTS_MANAGE))
    return _page(request, session, console, client_id, status=DONE.get(done))


def _existing(request: Request, session: SessionDep, console: Console, client_id: str) -> None:
    """Refuse a change of the built-in client (403) or of one that does not exist (404)."""
    if client_id == CONSOLE_CLIENT_ID:
        raise refused(request, BUILT_IN, console=console)
    if transaction(clients.get_client, session, client_id) is None:
        raise refused(request, "No such client.", console=console, status_code=404)


@router.post("/clients/{client_id}")
def save_client(
    request: Request,
    session: SessionDep,
    console: PostDep,
    client_id: str,
    name: Annotated[str, Form()] = "",
    redirect_uris: Annotated[str, Form()] = "",
    post_logout_redirect_uris: Annotated[str, Form()] = "",
    first_party: Annotated[str, Form()] = "",
    no_pkce: Annotated[str, Form()] = "",
    grant: Annotated[list[str] | None, Form()] = None,
    scope: Annotated[list[str] | None, Form()] = None,
    id_token_signed_response_alg: Annotated[str, Form()] = ID_TOKEN_ALGS[0],
    resource: Annotated[list[str] | None, Form()] = None,
    organization_usage: Annotated[str, Form()] = "",
) -> Response:
    """Change what the form shows, through the API's PATCH step: only the fields whose value
    differs from the client's now are sent (and audited as changed)."""
    need(request, console, console.can(Permission.CLIENTS_MANAGE))
    _existing(request, session, console, client_id)
    uris, logout_uris = uri_lines(redirect_uris), uri_lines(post_logout_redirect_uris)
    grants, scopes = checked(grant, len(GrantType)), checked(scope, len(CLIENT_SCOPES))
    resources = checked(resource, MAX_CLIENT_RESOURCES)
    form: dict[str, Any] = {
        "name": name[:MAX_NAME],
        "redirect_uris": "\n".join(uris),
        "post_logout_redirect_uris": "\n".join(logout_uris),
        "first_party": bool(first_party),
        "no_pkce": bool(no_pkce),
        "grants": grants,
        "scopes": scopes,
        "id_token_signed_response_alg": id_token_signed_response_alg[:8],
        "resources": resources,
        "organization_usage": organization_usage[:16],
    }

    def run() -> bool:
        body = ClientUpdate.model_validate(
            {
                "name": name.strip(),
                "redirect_uris": uris,
                "post_logout_redirect_uris": logout_uris,
                "first_party": bool(first_party),
                "require_pkce": not no_pkce,
                "grant_types": grants,
                "scopes": scopes,
                "id_token_signed_response_alg": id_token_signed_response_alg,
                "resources": resources,
                "organization_usage": organization_usage,
            }
        )
        return transaction(_save, session, client_id, body, console.actor(request))

    changed = attempt(run, LABELS, "Client")
    if isinstance(changed, Refusal):
        return _page(
            request,
            session,
            console,
            client_id,
            alert=changed.alert,
            form=form,
            status_code=changed.status_code,
        )
    done = "saved" if changed else "unchanged"
    return RedirectResponse(f"/admin/clients/{client_id}?done={done}", status_code=303)


def _differs(client: OAuthClient, name: str, value: Any) -> bool:
    now = getattr(client, name)
    if name in UNORDERED:
        return {str(v) for v in value} != set(now)
    if isinstance(value, list):
        return list(dict.fromkeys(str(v) for v in value)) != now
    return bool(value != now)


def _save(session: Session, client_id: str, body: ClientUpdate, actor: Actor) -> bool:
    """The API's update step with the fields `body` changes; False when it changes none."""
    client = clients.require_client(session, client_id)
    fields = {
        name: getattr(body, name)
        for name in sorted(body.model_fields_set)
        if _differs(client, name, getattr(body, name))
    }
    if not fields:
        return False
    clients.update_client(
        session, client=client, body=ClientUpdate.model_validate(fields), actor=actor
    )
    return True


@router.post("/clients/{client_id}/roles")
def save_client_roles(
    request: Request,
    session: SessionDep,
    console: PostDep,
    client_id: str,
    role: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Replace a confidential client's product roles with the checked ones."""
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    _existing(request, session, console, client_id)
    saved = attempt(
        lambda: transaction(
            authz.set_client_roles,
            session,
            client_id=client_id,
            role_ids=role_ids(role),
            actor=console.actor(request),
        ),
        LABELS,
        "Roles",
    )
    if isinstance(saved, Refusal):
        return _page(
            request,
            session,
            console,
            client_id,
            alert=saved.alert,
            chosen_roles=(role or [])[:200],
            status_code=saved.status_code,
        )
    return RedirectResponse(f"/admin/clients/{client_id}?done=roles", status_code=303)
