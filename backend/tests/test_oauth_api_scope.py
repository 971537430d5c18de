"""OAuth access tokens on the service's own API (AUTHZ.md, "The service's own API with OAuth
tokens"; OIDC.md revision 2): a token may do only what its scope names among the built-in
resource's permissions AND the user's role holds at the time of the request; a credential is
added or changed only with a token of a password or passkey login on /auth/*.

The attacks of the second security review, repeated: an admin who consented `openid` to a
third-party client gave it the whole admin API; a client holding a user's token registered a
passkey that then skipped TOTP."""

import re
import time
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select, update

from app.core.permissions import Permission, Role
from app.models.common import utcnow
from app.models.passkey import Passkey
from app.models.session import AuthSession
from app.models.user import User
from tests.utils import PASSWORD, api, auth_header, login, make_user
from tests.utils.oidc import (
    browser,
    exchange,
    form_fields,
    make_client,
    oauth_client,
    redirect_params,
    sign_in,
    start,
    submit,
)
from tests.utils.webauthn import SoftAuthenticator

MINE = "/users/me/passkeys"
SOME_PASSKEY = "00000000-0000-4000-8000-000000000000"


def consented_token(
    client: TestClient,
    db: Session,
    user: User,
    scope: str,
    totp_secret: str | None = None,
    **client_fields: Any,
) -> str:
    """An access token of a third-party client, through the hosted login and consent pages,
    as any site a user signs in to would hold one."""
    registered = make_client(db, name="Third Party", **client_fields)
    started = start(oauth_client(client, registered, scope=scope))
    b = browser(client)
    page = sign_in(b, started.url, user.email, PASSWORD)
    if totp_secret is not None:  # the second-factor page
        code = pyotp.TOTP(totp_secret).at(time.time() + 30)  # the set-up spent this step's
        page = submit(b, page, "/oauth/authorize/mfa", code=code)
    if page.status_code == 200:  # the consent page
        page = submit(b, page, "/oauth/authorize/consent", action="allow")
    code = redirect_params(page)["code"]
    response = exchange(client, registered, code, started.verifier)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def assert_insufficient_scope(response: Any, needed: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["www-authenticate"] == (
        f'Bearer error="insufficient_scope", scope="{needed}"'
    )


# --- the attack: an openid-only token of an admin -----------------------------------------


def test_an_openid_token_of_an_admin_cannot_use_the_admin_api(
    client: TestClient, db: Session, admin: User, user: User
) -> None:
    token = auth_header(consented_token(client, db, admin, "openid"))
    promote = client.patch(api(f"/users/{user.id}"), json={"role": "admin"}, headers=token)
    assert_insufficient_scope(promote, "users:set_role users:update")
    created = client.post(
        api("/clients"),
        json={"name": "Evil", "redirect_uris": ["https://evil.example/cb"]},
        headers=token,
    )
    assert_insufficient_scope(created, "clients:manage")
    assert_insufficient_scope(client.get(api("/audit-events"), headers=token), "audit:read")
    assert_insufficient_scope(client.get(api("/users/me"), headers=token), "account")
    db.refresh(user)
    assert user.role is Role.USER


def _api_operations(client: TestClient) -> list[tuple[str, str]]:
    paths = client.get(api("/openapi.json")).json()["paths"]
    return [
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith(api(""))
        for method in operations
    ]


def test_every_api_route_that_takes_a_bearer_token_refuses_an_openid_only_token(
    client: TestClient, db: Session, admin: User, user: User
) -> None:
    """Default deny: every /api/v1 route that answers 401 without a token answers 403
    insufficient_scope to an admin's openid-only token, whatever it is."""
    token = auth_header(consented_token(client, db, admin, "openid"))
    checked = 0
    for method, path in _api_operations(client):
        url = re.sub(r"\{[^}]+\}", str(user.id), path)
        body = {"role": "admin"} if method == "PATCH" else {}
        anonymous = client.request(method, url, json=body)
        if anonymous.status_code != 401:
            continue  # a route for anyone (login, register, recovery, ...)
        answer = client.request(method, url, json=body, headers=token)
        assert answer.status_code == 403, (method, path, answer.text)
        assert 'error="insufficient_scope"' in answer.headers["www-authenticate"], (method, path)
        checked += 1
    assert checked >= 20  # /users, /users/me and below, /clients, /audit-events, /auth/logout


# --- what a scope allows, and the role at the time of the request --------------------------


def test_a_token_does_what_its_scope_names_and_the_role_holds(
    client: TestClient, db: Session, admin: User, user: User
) -> None:
    scopes = ["openid", "account", "users:read"]
    token = auth_header(consented_token(client, db, admin, " ".join(scopes), scopes=scopes))
    assert client.get(api("/users/me"), headers=token).json()["id"] == str(admin.id)
    renamed = client.patch(api("/users/me"), json={"full_name": "Ada"}, headers=token)
    assert renamed.status_code == 200 and renamed.json()["full_name"] == "Ada"
    assert client.get(api("/users"), headers=token).status_code == 200
    assert client.get(api(f"/users/{user.id}"), headers=token).status_code == 200
    # users:read is not users:update: the admin's role holds it, the token does not.
    patch = client.patch(api(f"/users/{user.id}"), json={"full_name": "X"}, headers=token)
    assert_insufficient_scope(patch, "users:update")
    assert_insufficient_scope(
        client.delete(api(f"/users/{user.id}"), headers=token), "users:delete"
    )

    # The role is read at each request: demoted, the same token reads no other user.
    db.exec(update(User).where(col(User.id) == admin.id).values(role=Role.USER))
    db.commit()
    refused = client.get(api("/users"), headers=token)
    assert refused.status_code == 403 and "www-authenticate" not in refused.headers
    assert client.get(api(f"/users/{user.id}"), headers=token).status_code == 403
    assert client.get(api("/users/me"), headers=token).status_code == 200


def test_a_scope_the_role_does_not_hold_gives_nothing(
    client: TestClient, db: Session, user: User, admin: User
) -> None:
    scopes = ["openid", "users:read", "audit:read"]
    token = auth_header(consented_token(client, db, user, " ".join(scopes), scopes=scopes))
    refused = client.get(api("/users"), headers=token)
    assert refused.status_code == 403 and "www-authenticate" not in refused.headers
    assert client.get(api("/audit-events"), headers=token).status_code == 403
    assert client.get(api(f"/users/{admin.id}"), headers=token).status_code == 403


def test_tokens_of_auth_login_keep_the_role_alone_deciding(
    client: TestClient, admin_headers: dict[str, str], user: User
) -> None:
    assert client.get(api("/audit-events"), headers=admin_headers).status_code == 200
    patched = client.patch(
        api(f"/users/{user.id}"), json={"role": "moderator"}, headers=admin_headers
    )
    assert patched.status_code == 200


# --- registration, consent ----------------------------------------------------------------


def test_clients_are_registered_with_the_api_scopes_they_may_ask_for(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = {
        "name": "Reports",
        "redirect_uris": ["https://reports.example.com/cb"],
        "scopes": ["openid", "account", "users:read"],
    }
    created = client.post(api("/clients"), json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    assert created.json()["scopes"] == ["openid", "account", "users:read"]
    unknown = client.post(
        api("/clients"),
        json={**body, "scopes": ["openid", "users:everything"]},
        headers=admin_headers,
    )
    assert unknown.status_code == 422
    default = client.post(api("/clients"), json={**body, "scopes": None}, headers=admin_headers)
    assert default.status_code == 422  # null is refused; leaving it out gives the OIDC scopes
    body.pop("scopes")
    plain = client.post(api("/clients"), json=body, headers=admin_headers).json()
    assert "account" not in plain["scopes"] and "openid" in plain["scopes"]


def test_a_client_asks_only_for_the_api_scopes_it_is_registered_for(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, scopes=["openid", "account"])
    started = start(oauth_client(client, registered, scope="openid account users:read"))
    params = redirect_params(browser(client).get(started.url))
    assert params["error"] == "invalid_scope"


def test_consent_names_the_api_permissions_asked_for(
    client: TestClient, db: Session, user: User
) -> None:
    scopes = ["openid", "account", "users:read"]
    registered = make_client(db, name="Third Party", scopes=scopes)
    started = start(oauth_client(client, registered, scope=" ".join(scopes)))
    page = sign_in(browser(client), started.url, user.email, PASSWORD)
    assert page.status_code == 200 and "csrf_token" in form_fields(page.text)
    assert "Manage your account" in page.text
    assert "See every user&#39;s account" in page.text or "See every user's account" in page.text


def test_client_credentials_cannot_ask_for_the_api_scopes(client: TestClient, db: Session) -> None:
    registered = make_client(
        db,
        grant_types=["client_credentials"],
        redirect_uris=[],
        scopes=["roles", "users:read"],
    )
    answer = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "users:read"},
        auth=(registered.client_id, str(registered.client_secret)),
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_scope"


def test_discovery_lists_the_api_scopes(client: TestClient) -> None:
    supported = client.get("/.well-known/openid-configuration").json()["scopes_supported"]
    assert {"openid", "account", *(p.value for p in Permission)} <= set(supported)


# --- credentials: only from a fresh login on /auth/* ----------------------------------------


def _enable_totp(client: TestClient, headers: dict[str, str]) -> str:
    setup = client.post(api("/users/me/mfa/totp"), headers=headers, json={"password": PASSWORD})
    secret = str(setup.json()["secret"])
    confirm = client.post(
        api("/users/me/mfa/totp/confirm"), headers=headers, json={"code": pyotp.TOTP(secret).now()}
    )
    assert confirm.status_code == 200, confirm.text
    return secret


def test_an_oauth_token_cannot_add_a_passkey_that_would_skip_totp(
    client: TestClient, db: Session, user: User
) -> None:
    """The HIGH finding: the OAuth session was minutes old, so no password was asked, and a
    passkey with user verification then signed in with no TOTP step."""
    secret = _enable_totp(client, auth_header(login(client, user.email)))
    token = auth_header(
        consented_token(client, db, user, "openid account", secret, first_party=True)
    )
    options = client.post(api(f"{MINE}/registration/options"), headers=token, json={})
    assert options.status_code == 403, options.text
    with_password = client.post(
        api(f"{MINE}/registration/options"), headers=token, json={"password": PASSWORD}
    )
    assert with_password.status_code == 403
    credential = SoftAuthenticator().create(
        {"challenge": "AAAA", "rp": {"id": "testserver"}, "user": {"id": "AAAA"}}
    )
    register = client.post(
        api(f"{MINE}/registration"), headers=token, json={"credential": credential}
    )
    assert register.status_code == 403
    assert db.exec(select(Passkey).where(col(Passkey.user_id) == user.id)).all() == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "POST",
            "/users/me/password",
            {"current_password": PASSWORD, "new_password": "n3w-pass-word"},
        ),
        ("PATCH", "/users/me", {"email": "new@example.com", "current_password": PASSWORD}),
        ("POST", "/users/me/mfa/totp", {"password": PASSWORD}),
        ("POST", "/users/me/mfa/totp/confirm", {"code": "123456"}),
        ("DELETE", "/users/me/mfa/totp", {"password": PASSWORD, "code": "123456"}),
        ("POST", f"{MINE}/registration/options", {"password": PASSWORD}),
        ("POST", f"{MINE}/registration", {"credential": {}}),
        ("PATCH", f"{MINE}/{SOME_PASSKEY}", {"name": "x"}),
        ("DELETE", f"{MINE}/{SOME_PASSKEY}", None),
    ],
)
def test_an_oauth_token_with_account_scope_changes_no_credential(
    client: TestClient, db: Session, user: User, method: str, path: str, body: Any
) -> None:
    token = auth_header(consented_token(client, db, user, "openid account", first_party=True))
    answer = client.request(method, api(path), headers=token, json=body)
    assert answer.status_code == 403, answer.text
    assert "OAuth access token" in answer.json()["detail"]
    db.refresh(user)
    assert user.email != "new@example.com"


def test_patch_users_id_of_oneself_changes_no_email_with_an_oauth_token(
    client: TestClient, db: Session, user: User
) -> None:
    token = auth_header(consented_token(client, db, user, "openid account", first_party=True))
    body = {"email": "new@example.com", "current_password": PASSWORD}
    assert client.patch(api(f"/users/{user.id}"), headers=token, json=body).status_code == 403
    renamed = client.patch(api(f"/users/{user.id}"), headers=token, json={"full_name": "Bo"})
    assert renamed.status_code == 200


def test_a_recent_refresh_does_not_make_an_old_login_recent(
    client: TestClient, db: Session, user: User
) -> None:
    tokens = login(client, user.email)
    db.exec(
        update(AuthSession)
        .where(col(AuthSession.user_id) == user.id)
        .values(created_at=utcnow() - timedelta(minutes=6))
    )
    db.commit()
    renewed = client.post(api("/auth/refresh"), json={"refresh_token": tokens["refresh_token"]})
    assert renewed.status_code == 200
    stale = client.post(
        api(f"{MINE}/registration/options"), headers=auth_header(renewed.json()), json={}
    )
    assert stale.status_code == 400 and "Password required" in stale.json()["detail"]


def test_a_fresh_login_on_auth_adds_a_passkey_without_the_password(
    client: TestClient, user: User
) -> None:
    headers = auth_header(login(client, user.email))
    assert (
        client.post(api(f"{MINE}/registration/options"), headers=headers, json={}).status_code
        == 200
    )


def test_an_oauth_session_row_is_never_a_recent_login(
    client: TestClient, db: Session, user: User
) -> None:
    """Even reached without the token check, an OAuth session (a code exchange, perhaps from
    single sign-on with no login) is not a login for the passkey rule."""
    import asyncio

    from app.crud.audit import SYSTEM
    from app.errors import IncorrectPassword
    from app.models.session import SessionKind
    from app.passkeys import ceremonies

    consented_token(client, db, user, "openid account", first_party=True)
    row = db.exec(select(AuthSession).where(col(AuthSession.kind) == SessionKind.OAUTH)).one()
    assert utcnow() - row.created_at < timedelta(minutes=1)
    with pytest.raises(IncorrectPassword):
        asyncio.run(
            ceremonies.begin_registration(
                db, user=user, auth_session=row, password=None, actor=SYSTEM
            )
        )


def test_a_moderator_token_from_auth_login_still_reads_users(
    client: TestClient, db: Session
) -> None:
    moderator = make_user(db, role=Role.MODERATOR)
    headers = auth_header(login(client, moderator.email))
    assert client.get(api("/users"), headers=headers).status_code == 200
