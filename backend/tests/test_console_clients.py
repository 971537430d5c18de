"""The console's OAuth clients and their authorization fields (AUTHZ.md "Console", CONSOLE.md)
over HTTP, driven like a browser through the hosted login: Resources and Organizations on the
create form, a client's page (settings saved through the API's update step, a confidential
client's product roles through the API's assignment step, which its client_credentials tokens
then carry), the built-in console client read-only, and every refusal a 4xx that changes
nothing."""

import uuid
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from app.crud.console import CONSOLE_CLIENT_ID
from app.db import get_engine
from app.models.audit import AuditEvent
from app.models.authz import ClientRole
from app.models.client import ClientCreated, OAuthClient
from app.models.user import User
from tests.test_authz import ORDERS, create_resource, create_role
from tests.test_oauth_resources import verified
from tests.utils import api
from tests.utils.console import alert, csrf, post_forms, sign_in, status
from tests.utils.oidc import ISSUER, TOKEN, make_client

pytestmark = pytest.mark.usefixtures("oidc_issuer")

WEB_URI = "https://app.example.com/callback"
WEB_APP = {"name": "Shop", "redirect_uris": WEB_URI, "grant": "authorization_code"}
BUILT_IN = "The console's own client is built in: it cannot be changed here."


def snapshot() -> dict[str, Any]:
    """Every client setting and client role a console form could change, and the audit log."""
    with Session(get_engine()) as session:
        rows = session.exec(select(OAuthClient).order_by(col(OAuthClient.client_id))).all()
        state = {
            "clients": [row.model_dump(exclude={"created_at"}) for row in rows],
            "client_roles": sorted(
                (row.client_id, str(row.role_id)) for row in session.exec(select(ClientRole)).all()
            ),
            "events": session.exec(select(func.count()).select_from(AuditEvent)).one(),
        }
        session.commit()
    return state


def stored(client_id: str) -> OAuthClient:
    with Session(get_engine(), expire_on_commit=False) as session:
        row = session.get(OAuthClient, client_id)
        session.commit()
    assert row is not None
    return row


def last_event(name: str) -> AuditEvent:
    with Session(get_engine(), expire_on_commit=False) as session:
        row = session.exec(
            select(AuditEvent).where(AuditEvent.event == name).order_by(col(AuditEvent.id).desc())
        ).first()
        session.commit()
    assert row is not None, name
    return row


def post(b: httpx.Client, path: str, data: dict[str, Any], token: str | None) -> httpx.Response:
    body = {**data, **({"csrf_token": token} if token is not None else {})}
    return b.post(path, data=body)


def settings_form(row: OAuthClient | ClientCreated, **changes: Any) -> dict[str, Any]:
    """The client page's settings form as it comes filled in, with `changes`."""
    form: dict[str, Any] = {
        "name": row.name,
        "redirect_uris": "\n".join(row.redirect_uris),
        "post_logout_redirect_uris": "\n".join(row.post_logout_redirect_uris),
        "grant": [str(g) for g in row.grant_types],
        "scope": list(row.scopes),
        "id_token_signed_response_alg": row.id_token_signed_response_alg,
        "resource": list(row.resources),
        "organization_usage": str(row.organization_usage),
        **({"first_party": "yes"} if row.first_party else {}),
        **({} if row.require_pkce else {"no_pkce": "yes"}),
    }
    return {**form, **changes}


@pytest.fixture
def scene(client: TestClient, db: Session, admin_headers: dict[str, str]) -> dict[str, Any]:
    """Orders (read, write), a role for each, a confidential service client registered for no
    resource yet, and a public browser app."""
    create_resource(client, admin_headers, ORDERS, "read", "write")
    return {
        "reader": create_role(client, admin_headers, "reader", (ORDERS, "read")),
        "writer": create_role(client, admin_headers, "writer", (ORDERS, "write")),
        "service": make_client(
            db, name="Nightly job", grant_types=["client_credentials"], redirect_uris=[]
        ),
        "spa": make_client(db, name="SPA", public=True),
    }


def posts_of(scene: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    service: ClientCreated = scene["service"]
    path = f"/admin/clients/{service.client_id}"
    return {
        "create": ("/admin/clients", {**WEB_APP, "name": "New"}),
        "save": (path, settings_form(service, resource=[ORDERS])),
        "roles": (f"{path}/roles", {"role": scene["reader"]["id"]}),
    }


# --- the create form -----------------------------------------------------------------------------


def test_a_client_is_created_with_resources_and_an_organization_usage(
    client: TestClient, admin: User, scene: dict[str, Any]
) -> None:
    b, html = sign_in(client, admin.email, "/admin/clients")
    assert f'name="resource" value="{ORDERS}"' in html
    assert f'name="resource" value="{ISSUER}"' in html  # the built-in resource: the issuer
    assert "<legend>Resources</legend>" in html and '<label for="organization_usage">' in html
    for usage in ("none", "allow", "require"):
        assert f'<option value="{usage}"' in html
    form = {
        "name": "Shop",
        "redirect_uris": WEB_URI,
        "grant": ["authorization_code", "refresh_token"],
        "resource": [ORDERS, ORDERS],
        "organization_usage": "require",
    }
    answer = post(b, "/admin/clients", form, csrf(html))
    assert answer.status_code == 201, answer.text
    with Session(get_engine(), expire_on_commit=False) as session:
        row = session.exec(select(OAuthClient).where(OAuthClient.name == "Shop")).one()
        session.commit()
    assert row.resources == [ORDERS] and row.organization_usage == "require"
    assert f'href="/admin/clients/{row.client_id}"' in answer.text  # the status links its page
    assert last_event("oauth.client_created").actor_id == admin.id

    plain = post(b, "/admin/clients", {**WEB_APP, "name": "Plain"}, csrf(html))
    assert plain.status_code == 201
    listed = b.get("/admin/clients").text
    for client_id in (row.client_id, scene["service"].client_id, CONSOLE_CLIENT_ID):
        assert f'<a href="/admin/clients/{client_id}">' in listed
    with Session(get_engine()) as session:
        row = session.exec(select(OAuthClient).where(OAuthClient.name == "Plain")).one()
        assert row.resources == [] and row.organization_usage == "none"
        session.commit()


@pytest.mark.parametrize(
    ("changes", "expected", "code"),
    [
        ({"resource": "https://nowhere.example.com"}, "https://nowhere.example.com", 422),
        ({"resource": "not a uri"}, "Resources", 422),
        ({"resource": [f"https://r{i}.example.com" for i in range(51)]}, "Resources", 422),
        ({"organization_usage": "all"}, "Organizations", 422),
        ({"redirect_uris": "http://app.example.com/cb"}, "Redirect URIs", 422),
    ],
)
def test_a_bad_create_form_is_re_shown_with_the_reason(
    client: TestClient,
    admin: User,
    scene: dict[str, Any],
    changes: dict[str, Any],
    expected: str,
    code: int,
) -> None:
    b, html = sign_in(client, admin.email, "/admin/clients")
    before = snapshot()
    form = {**WEB_APP, **changes}
    answer = post(b, "/admin/clients", form, csrf(html))
    assert answer.status_code == code, answer.text
    assert expected in (alert(answer.text) or ""), alert(answer.text)
    assert 'value="Shop"' in answer.text  # the form comes back as it was filled in
    assert snapshot() == before


# --- a client's page: its settings ---------------------------------------------------------------


def test_an_admin_edits_a_client_on_its_page(
    client: TestClient, admin: User, scene: dict[str, Any]
) -> None:
    service: ClientCreated = scene["service"]
    path = f"/admin/clients/{service.client_id}"
    b, html = sign_in(client, admin.email, path)
    assert "<title>Client Nightly job ·" in html and service.client_id in html
    assert post_forms(html) == ["/admin/logout", path, f"{path}/roles"]
    assert "Save client" in html and "Save client roles" in html

    form = settings_form(
        service, name="Nightly batch", resource=[ORDERS], organization_usage="allow"
    )
    saved = post(b, path, form, csrf(html))
    assert saved.status_code == 303, saved.text
    page = b.get(saved.headers["location"]).text
    assert status(page) == "Client saved." and "<h1>Nightly batch</h1>" in page
    assert f'value="{ORDERS}" checked' in page
    row = stored(service.client_id)
    assert row.name == "Nightly batch" and row.resources == [ORDERS]
    assert row.organization_usage == "allow"
    assert row.grant_types == ["client_credentials"] and row.scopes == service.scopes
    event = last_event("oauth.client_updated")
    assert event.actor_id == admin.id
    assert event.detail["fields"] == ["name", "organization_usage", "resources"]

    # The same form again changes nothing and says so; no event is written.
    again = post(b, path, {**form, "scope": list(reversed(service.scopes))}, csrf(html))
    assert again.status_code == 303
    assert status(b.get(again.headers["location"]).text) == (
        "Nothing to save: the settings were already so."
    )
    assert last_event("oauth.client_updated").id == event.id

    # A web app: redirect URIs, the code grant, first-party, the ID token's algorithm.
    spa: ClientCreated = scene["spa"]
    uris = f"{WEB_URI}\r\nhttp://127.0.0.1:9000/cb\r\n\r\n"
    spa_form = settings_form(
        spa, redirect_uris=uris, first_party="yes", id_token_signed_response_alg="ES256"
    )
    changed = post(b, f"/admin/clients/{spa.client_id}", spa_form, csrf(html))
    assert changed.status_code == 303, changed.text
    row = stored(spa.client_id)
    assert row.redirect_uris == [WEB_URI, "http://127.0.0.1:9000/cb"] and row.first_party
    assert row.id_token_signed_response_alg == "ES256" and row.public and row.require_pkce


@pytest.mark.parametrize(
    ("target", "changes", "expected", "code"),
    [
        ("service", {"resource": "https://nowhere.example.com"}, "nowhere.example.com", 422),
        ("service", {"resource": "not a uri"}, "Resources", 422),
        ("service", {"organization_usage": "all"}, "Organizations", 422),
        ("service", {"name": " "}, "Name", 422),
        ("service", {"scope": []}, "Scopes", 422),
        ("service", {"grant": []}, "Grants", 422),
        ("service", {"scope": ["openid", "admin"]}, "Scopes", 422),
        ("service", {"id_token_signed_response_alg": "none"}, "ID token signature", 422),
        ("spa", {"redirect_uris": "http://app.example.com/cb"}, "Redirect URIs", 422),
        ("spa", {"redirect_uris": ""}, "redirect_uris", 400),
        ("spa", {"grant": ["authorization_code", "client_credentials"]}, "public client", 400),
        ("spa", {"no_pkce": "yes"}, "PKCE", 400),
    ],
)
def test_a_bad_settings_form_is_re_shown_with_the_reason(
    client: TestClient,
    admin: User,
    scene: dict[str, Any],
    target: str,
    changes: dict[str, Any],
    expected: str,
    code: int,
) -> None:
    registered: ClientCreated = scene[target]
    path = f"/admin/clients/{registered.client_id}"
    b, html = sign_in(client, admin.email, path)
    before = snapshot()
    answer = post(b, path, settings_form(registered, **changes), csrf(html))
    assert answer.status_code == code, answer.text
    assert expected in (alert(answer.text) or ""), alert(answer.text)
    assert f'action="{path}"' in answer.text  # the form is shown again
    assert snapshot() == before


# --- a client's page: its product roles ----------------------------------------------------------


def token_scope(client: TestClient, registered: ClientCreated, scope: str) -> str:
    """The scope of the client's own token for Orders (client_credentials, RFC 8707)."""
    form = {"grant_type": "client_credentials", "resource": ORDERS, "scope": scope}
    answer = client.post(
        TOKEN, data=form, auth=(registered.client_id, str(registered.client_secret))
    )
    assert answer.status_code == 200, answer.text
    claims = verified(client, answer.json()["access_token"], ORDERS)
    assert claims["sub"] == registered.client_id
    return str(answer.json()["scope"])


def test_client_roles_are_saved_and_go_into_its_client_credentials_token(
    client: TestClient, admin: User, admin_headers: dict[str, str], scene: dict[str, Any]
) -> None:
    service: ClientCreated = scene["service"]
    path = f"/admin/clients/{service.client_id}"
    b, html = sign_in(client, admin.email, path)
    assert post(b, path, settings_form(service, resource=[ORDERS]), csrf(html)).status_code == 303
    assert token_scope(client, service, "read write") == ""  # no roles yet: nothing held

    saved = post(b, f"{path}/roles", {"role": scene["reader"]["id"]}, csrf(html))
    assert saved.status_code == 303, saved.text
    page = b.get(saved.headers["location"]).text
    assert status(page) == "Client roles saved: its next tokens carry their permissions."
    assert f'value="{scene["reader"]["id"]}" checked' in page
    roles = client.get(api(f"/clients/{service.client_id}/roles"), headers=admin_headers).json()
    assert roles == {"roles": [{"id": scene["reader"]["id"], "name": "reader"}]}
    assert token_scope(client, service, "read write") == "read"
    event = last_event("authz.roles_assigned")
    assert event.actor_id == admin.id
    assert event.detail == {"client_id": service.client_id, "before": [], "after": ["reader"]}

    both = [scene["reader"]["id"], scene["writer"]["id"]]
    assert post(b, f"{path}/roles", {"role": both}, csrf(html)).status_code == 303
    assert token_scope(client, service, "read write") == "read write"
    assert post(b, f"{path}/roles", {}, csrf(html)).status_code == 303  # none checked
    assert client.get(api(f"/clients/{service.client_id}/roles"), headers=admin_headers).json() == {
        "roles": []
    }
    assert token_scope(client, service, "read write") == ""


@pytest.mark.parametrize(
    ("roles", "code", "expected"),
    [
        (["not-a-role-id"], 400, "Choose roles from the list."),
        ([str(uuid.uuid4())], 422, "Unknown role"),
    ],
)
def test_a_forged_role_is_refused(
    client: TestClient,
    admin: User,
    scene: dict[str, Any],
    roles: list[str],
    code: int,
    expected: str,
) -> None:
    path = f"/admin/clients/{scene['service'].client_id}"
    b, html = sign_in(client, admin.email, path)
    before = snapshot()
    answer = post(b, f"{path}/roles", {"role": [scene["reader"]["id"], *roles]}, csrf(html))
    assert answer.status_code == code, answer.text
    assert expected in (alert(answer.text) or ""), alert(answer.text)
    assert snapshot() == before


def test_a_public_client_cannot_hold_roles(
    client: TestClient, admin: User, scene: dict[str, Any]
) -> None:
    path = f"/admin/clients/{scene['spa'].client_id}"
    b, html = sign_in(client, admin.email, path)
    assert "A public client cannot hold roles" in html
    assert post_forms(html) == ["/admin/logout", path] and "Save client roles" not in html
    before = snapshot()
    answer = post(b, f"{path}/roles", {"role": scene["reader"]["id"]}, csrf(html))
    assert answer.status_code == 422
    assert alert(answer.text) == "Only a confidential client holds roles"
    assert snapshot() == before


# --- refusals: the built-in client, roles, CSRF, unknown clients ---------------------------------


def test_the_built_in_console_client_is_read_only(
    client: TestClient, admin: User, scene: dict[str, Any]
) -> None:
    path = f"/admin/clients/{CONSOLE_CLIENT_ID}"
    b, html = sign_in(client, admin.email, path)
    assert f"{ISSUER}/admin/callback" in html and "cannot be changed here" in html
    assert post_forms(html) == ["/admin/logout"]
    builtin = stored(CONSOLE_CLIENT_ID)
    before = snapshot()
    forged = {
        path: settings_form(builtin, name="Mine", resource=[ORDERS]),
        f"{path}/roles": {"role": scene["reader"]["id"]},
    }
    for target, data in forged.items():
        answer = post(b, target, data, csrf(html))
        assert answer.status_code == 403, target
        assert alert(answer.text) == BUILT_IN
    assert snapshot() == before


def test_a_moderator_gets_a_403_on_the_pages_and_every_post(
    client: TestClient, moderator: User, scene: dict[str, Any]
) -> None:
    b, html = sign_in(client, moderator.email)
    assert 'href="/admin/clients"' not in html
    for page in ("/admin/clients", f"/admin/clients/{scene['service'].client_id}"):
        answer = b.get(page)
        assert answer.status_code == 403 and post_forms(answer.text) == ["/admin/logout"]
    before = snapshot()
    for action, (path, data) in posts_of(scene).items():
        answer = post(b, path, data, csrf(html))  # the moderator's own, valid token
        assert answer.status_code == 403, action
        assert alert(answer.text) == "Your role may not do this.", action
    assert snapshot() == before


def test_every_form_refuses_a_missing_or_forged_csrf_token(
    client: TestClient, admin: User, scene: dict[str, Any]
) -> None:
    b, html = sign_in(client, admin.email)
    _, other = sign_in(client, admin.email)  # the same admin in another browser
    before = snapshot()
    for action, (path, data) in posts_of(scene).items():
        for token in (None, "", csrf(html)[:-1] + "x", csrf(other)):
            answer = post(b, path, data, token)
            assert answer.status_code == 403, (action, token)
            assert "This form has expired" in answer.text
    assert snapshot() == before


def test_each_form_works_for_an_admin_audited_with_the_admin_as_actor(
    client: TestClient, admin: User, scene: dict[str, Any]
) -> None:
    events = {
        "create": ("oauth.client_created", 201),
        "save": ("oauth.client_updated", 303),
        "roles": ("authz.roles_assigned", 303),
    }
    b, html = sign_in(client, admin.email)
    forms = posts_of(scene)
    for action, (event, code) in events.items():
        path, data = forms[action]
        before = snapshot()
        answer = post(b, path, data, csrf(html))
        assert answer.status_code == code, (action, answer.text)
        landed = answer if code == 201 else b.get(answer.headers["location"])
        assert landed.status_code in (200, 201) and 'role="status"' in landed.text, action
        assert snapshot() != before, action
        assert last_event(event).actor_id == admin.id, action


@pytest.mark.parametrize("client_id", ["nobody", "x" * 65, "%20"])
def test_an_unknown_client_is_a_404_page(
    client: TestClient, admin: User, scene: dict[str, Any], client_id: str
) -> None:
    b, html = sign_in(client, admin.email)
    path = f"/admin/clients/{client_id}"
    page = b.get(path)
    assert page.status_code == 404 and alert(page.text) == "No such client."
    before = snapshot()
    for target, data in ((path, settings_form(scene["service"])), (f"{path}/roles", {})):
        answer = post(b, target, data, csrf(html))
        assert answer.status_code == 404, target
        assert alert(answer.text) == "No such client."
    assert snapshot() == before
