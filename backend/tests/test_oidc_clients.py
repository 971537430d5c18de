"""The OAuth client registry (admin API, `manage client ...`), discovery and the JWKS."""

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.core import keys
from app.core.config import Settings
from app.core.security import token_digest
from app.crud import clients
from app.crud.audit import SYSTEM
from app.db import get_engine, transaction
from app.models.audit import AuditEvent
from app.models.client import ClientCreate, OAuthClient
from tests.test_cli import manage, refused
from tests.utils import api

BODY = {"name": "Dashboard", "redirect_uris": ["https://dash.example.com/cb"]}


def stored_client(client_id: str) -> OAuthClient | None:
    with Session(get_engine()) as session:
        return session.get(OAuthClient, client_id)


def test_admin_registers_a_confidential_client_whose_secret_is_shown_once_and_stored_hashed(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    created = client.post(api("/clients"), json=BODY, headers=admin_headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["public"] is False and body["first_party"] is False
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["scopes"] == ["openid", "profile", "email", "offline_access", "roles"]
    secret = body["client_secret"]
    assert len(secret) >= 40
    row = stored_client(body["client_id"])
    assert row is not None and row.secret_digest == token_digest(secret)
    assert secret not in str(row.model_dump())

    listed = client.get(api("/clients"), headers=admin_headers).json()
    assert listed["total"] == 1 and "client_secret" not in listed["items"][0]
    one = client.get(api(f"/clients/{body['client_id']}"), headers=admin_headers).json()
    assert "client_secret" not in one and one["name"] == "Dashboard"

    patched = client.patch(
        api(f"/clients/{body['client_id']}"),
        json={"first_party": True, "scopes": ["openid", "email"]},
        headers=admin_headers,
    )
    assert patched.status_code == 200
    assert patched.json()["first_party"] is True and patched.json()["scopes"] == ["openid", "email"]

    rotated = client.post(api(f"/clients/{body['client_id']}/secret"), headers=admin_headers)
    assert rotated.status_code == 200 and rotated.json()["client_secret"] != secret

    assert (
        client.delete(api(f"/clients/{body['client_id']}"), headers=admin_headers).status_code
        == 204
    )
    assert stored_client(body["client_id"]) is None
    assert (
        client.get(api(f"/clients/{body['client_id']}"), headers=admin_headers).status_code == 404
    )
    with Session(get_engine()) as session:
        events = session.exec(select(AuditEvent.event)).all()
    assert {"oauth.client_created", "oauth.client_deleted"} <= set(events)


def test_a_public_client_has_no_secret(client: TestClient, admin_headers: dict[str, str]) -> None:
    created = client.post(api("/clients"), json={**BODY, "public": True}, headers=admin_headers)
    assert created.status_code == 201
    assert created.json()["client_secret"] is None
    assert stored_client(created.json()["client_id"]).secret_digest is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "uri",
    [
        "http://dash.example.com/cb",  # http outside loopback
        "https://dash.example.com/cb#frag",
        "/relative/cb",
        "com.example.app:/cb",
        "https://",
        "https://dash.example.com/c b",
    ],
)
def test_redirect_uris_must_be_absolute_https_without_fragment(
    client: TestClient, admin_headers: dict[str, str], uri: str
) -> None:
    response = client.post(
        api("/clients"), json={**BODY, "redirect_uris": [uri]}, headers=admin_headers
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:8765/cb", "http://localhost:3000/cb", "http://[::1]/cb"]
)
def test_loopback_redirect_uris_may_use_http(
    client: TestClient, admin_headers: dict[str, str], uri: str
) -> None:
    response = client.post(
        api("/clients"), json={**BODY, "redirect_uris": [uri]}, headers=admin_headers
    )
    assert response.status_code == 201, response.text


def test_a_public_client_cannot_have_client_credentials(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = {**BODY, "public": True, "grant_types": ["client_credentials"]}
    assert client.post(api("/clients"), json=body, headers=admin_headers).status_code == 422


def test_a_public_client_cannot_be_given_client_credentials_later(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = {**BODY, "public": True}
    created = client.post(api("/clients"), json=body, headers=admin_headers).json()
    patch = {"grant_types": ["authorization_code", "client_credentials"]}
    path = api(f"/clients/{created['client_id']}")
    assert client.patch(path, json=patch, headers=admin_headers).status_code == 400
    assert client.get(path, headers=admin_headers).json()["grant_types"] == [
        "authorization_code", "refresh_token",
    ]  # fmt: skip


def test_a_service_client_needs_no_redirect_uri_but_a_web_app_does(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    service = {"name": "Job", "grant_types": ["client_credentials"], "scopes": ["roles"]}
    created = client.post(api("/clients"), json=service, headers=admin_headers)
    assert created.status_code == 201, created.text
    assert created.json()["redirect_uris"] == [] and created.json()["client_secret"]
    web = {"name": "Web", "redirect_uris": []}
    assert client.post(api("/clients"), json=web, headers=admin_headers).status_code == 422


def test_an_update_cannot_leave_the_code_grant_without_a_redirect_uri(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    """The rule of a registration holds for the client an update leaves behind."""
    web = client.post(api("/clients"), json=BODY, headers=admin_headers).json()
    service = {"name": "Job", "grant_types": ["client_credentials"], "scopes": ["roles"]}
    job = client.post(api("/clients"), json=service, headers=admin_headers).json()
    for created, patch in (
        (web, {"redirect_uris": []}),
        (job, {"grant_types": ["client_credentials", "authorization_code"]}),
    ):
        path = api(f"/clients/{created['client_id']}")
        refused = client.patch(path, json=patch, headers=admin_headers)
        assert refused.status_code == 400 and "redirect_uris" in refused.json()["detail"]
        after = client.get(path, headers=admin_headers).json()
        assert after["redirect_uris"] == created["redirect_uris"]
        assert after["grant_types"] == created["grant_types"]
    both = {"grant_types": ["client_credentials"], "redirect_uris": []}
    changed = client.patch(api(f"/clients/{web['client_id']}"), json=both, headers=admin_headers)
    assert changed.status_code == 200 and changed.json()["redirect_uris"] == []


def test_a_client_id_never_starts_with_a_dash(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """`manage client delete -abc` would read an option: such ids are drawn again."""
    drawn = iter(["-looks-like-an-option", "fine-id"])
    monkeypatch.setattr(clients.secrets, "token_urlsafe", lambda _n: next(drawn, "secret"))
    created = transaction(clients.create_client, db, body=ClientCreate(**BODY), actor=SYSTEM)
    assert created.client_id == "fine-id"


def test_clients_are_for_admins_only(
    client: TestClient, user_headers: dict[str, str], moderator_headers: dict[str, str]
) -> None:
    for headers in (user_headers, moderator_headers):
        assert client.post(api("/clients"), json=BODY, headers=headers).status_code == 403
        assert client.get(api("/clients"), headers=headers).status_code == 403
    assert client.get(api("/clients")).status_code == 401


def test_manage_client_create_list_rotate_delete(client: TestClient, tmp_path: Path) -> None:
    created = manage(
        "client", "create", "CLI App", "--redirect-uri", "https://cli.example.com/cb",
        "--redirect-uri", "http://127.0.0.1:9000/cb", "--first-party",
        "--scope", "openid", "--scope", "email", cwd=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    lines = dict(line.split(": ", 1) for line in created.stdout.strip().splitlines())
    client_id, secret = lines["client_id"], lines["client_secret"]
    row = stored_client(client_id)
    assert row is not None and row.first_party and row.scopes == ["openid", "email"]
    assert row.redirect_uris == ["https://cli.example.com/cb", "http://127.0.0.1:9000/cb"]
    assert row.secret_digest == token_digest(secret)

    listed = manage("client", "list", cwd=tmp_path)
    assert listed.returncode == 0 and client_id in listed.stdout and secret not in listed.stdout

    rotated = manage("client", "rotate-secret", client_id, cwd=tmp_path)
    assert rotated.returncode == 0
    new_secret = rotated.stdout.strip().removeprefix("client_secret: ")
    assert stored_client(client_id).secret_digest == token_digest(new_secret)  # type: ignore[union-attr]

    assert manage("client", "delete", client_id, cwd=tmp_path).returncode == 0
    assert stored_client(client_id) is None
    assert "no client with id" in refused(manage("client", "delete", client_id, cwd=tmp_path))

    bad = manage("client", "create", "X", "--redirect-uri", "http://evil.example/cb", cwd=tmp_path)
    assert bad.returncode == 2 and "https" in bad.stderr and "Traceback" not in bad.stderr
    no_uri = manage("client", "create", "Web", cwd=tmp_path)  # authorization_code needs one
    assert no_uri.returncode == 2 and "redirect_uris" in no_uri.stderr

    job = manage(
        "client", "create", "Job", "--grant", "client_credentials", "--scope", "roles",
        cwd=tmp_path,
    )  # fmt: skip
    assert job.returncode == 0, job.stderr
    job_id = dict(line.split(": ", 1) for line in job.stdout.strip().splitlines())["client_id"]
    job_row = stored_client(job_id)
    assert job_row is not None and job_row.redirect_uris == []
    assert job_row.grant_types == ["client_credentials"]


def test_discovery_documents_list_the_endpoints_that_exist(
    client: TestClient, settings: Callable[..., Settings]
) -> None:
    settings(PUBLIC_URL="https://auth.example.com")
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        metadata = client.get(path).json()
        assert metadata["issuer"] == "https://auth.example.com"
        assert metadata["authorization_endpoint"] == "https://auth.example.com/oauth/authorize"
        assert metadata["token_endpoint"] == "https://auth.example.com/oauth/token"
        assert metadata["userinfo_endpoint"] == "https://auth.example.com/oauth/userinfo"
        assert metadata["jwks_uri"] == "https://auth.example.com/.well-known/jwks.json"
        assert metadata["response_types_supported"] == ["code"]
        assert metadata["code_challenge_methods_supported"] == ["S256"]
        assert metadata["subject_types_supported"] == ["public"]
        assert metadata["authorization_response_iss_parameter_supported"] is True
        assert set(metadata["scopes_supported"]) == {
            "openid",
            "profile",
            "email",
            "offline_access",
            "roles",
            "organizations",  # AUTHZ.md, "Tokens"
            # the service's own API, asked for by its permissions (AUTHZ.md)
            "account",
            "users:read",
            "users:update",
            "users:set_role",
            "users:delete",
            "users:unlock",
            "users:import",
            "audit:read",
            "clients:manage",
            "authz:manage",
            "org:members:read",
            "org:members:manage",
            "org:invitations:manage",
        }
        assert set(metadata["token_endpoint_auth_methods_supported"]) == {
            "client_secret_basic", "client_secret_post", "none",
        }  # fmt: skip
        assert metadata["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
        assert {"sub", "email", "email_verified", "name", "updated_at", "role", "amr"} <= set(
            metadata["claims_supported"]
        )
        assert set(metadata["grant_types_supported"]) == {
            "authorization_code", "refresh_token", "client_credentials",
        }  # fmt: skip
        base = "https://auth.example.com/oauth/"
        assert metadata["introspection_endpoint"] == base + "introspect"
        assert metadata["revocation_endpoint"] == base + "revoke"
        assert metadata["end_session_endpoint"] == base + "logout"
        assert metadata["introspection_endpoint_auth_methods_supported"] == [
            "client_secret_basic", "client_secret_post",
        ]  # fmt: skip
        assert set(metadata["revocation_endpoint_auth_methods_supported"]) == {
            "client_secret_basic", "client_secret_post", "none",
        }  # fmt: skip
        for name, value in metadata.items():  # only endpoints that answer
            if name.endswith("_endpoint"):
                path_only = value.removeprefix("https://auth.example.com")
                assert client.options(path_only).status_code != 404, name


def test_the_development_oidc_keys_are_generated_once_with_mode_0600() -> None:
    """An RS256 key (what ID tokens and access tokens are signed with by default) and an
    ES256 key (for clients that register it), each in a 0600 file beside SECRET_KEY_FILE."""
    from app.core.config import get_settings

    for algorithm in ("RS256", "ES256"):
        path = get_settings().SECRET_KEY_FILE.parent / keys.DEV_OIDC_KEY_NAMES[algorithm]
        assert path.stat().st_mode & 0o777 == 0o600
        assert keys.signing_key(algorithm).algorithm == algorithm
        assert keys.signing_key(algorithm).private_key.public_key() == (
            keys.load_private_key(path, algorithm).public_key()
        )


def test_oauth_endpoints_answer_cors_for_public_clients_and_configured_origins(
    client: TestClient, db: Session
) -> None:
    from tests.utils.oidc import make_client

    make_client(db, public=True, redirect_uris=["http://localhost:5173/callback"])
    make_client(db, redirect_uris=["https://confidential.example.com/cb"])  # not a browser app
    preflight = {"Access-Control-Request-Method": "POST"}
    for origin in ("http://localhost:5173", "http://localhost:3000"):  # client, configured
        answer = client.options("/oauth/token", headers={"Origin": origin, **preflight})
        assert answer.status_code == 204, answer.text
        assert answer.headers["access-control-allow-origin"] == origin
        assert "access-control-allow-credentials" not in answer.headers
        for path in ("/.well-known/jwks.json", "/.well-known/openid-configuration"):
            got = client.get(path, headers={"Origin": origin})
            assert got.headers["access-control-allow-origin"] == origin
            assert got.headers["vary"] == "Origin"
        refused = client.post("/oauth/token", data={}, headers={"Origin": origin})
        assert refused.status_code == 400
        assert refused.headers["access-control-allow-origin"] == origin

    for origin in ("https://confidential.example.com", "https://evil.example.com"):
        assert (
            client.options("/oauth/token", headers={"Origin": origin, **preflight}).status_code
            == 400
        )
        got = client.get("/.well-known/jwks.json", headers={"Origin": origin})
        assert "access-control-allow-origin" not in got.headers


def test_production_without_an_oidc_key_refuses_to_serve_once_a_client_exists(
    db: Session, tmp_path: Path
) -> None:
    from tests.test_settings import one_line, start
    from tests.utils.oidc import make_client
    from tests.utils.production import PRODUCTION
    from tests.utils.server import MANAGE

    production = {**PRODUCTION, "SECRET_KEY_FILE": str(tmp_path / ".secret_key")}
    make_client(db)
    result = start([str(MANAGE), "serve", "--port", "1"], tmp_path, **production)
    assert "OIDC_SIGNING_KEY_FILE" in one_line(result)
    for name in keys.DEV_OIDC_KEY_NAMES.values():
        assert not (tmp_path / name).exists()  # never generated in production


def test_production_without_an_oidc_key_answers_503_not_a_crash(
    client: TestClient, settings: Callable[..., Settings]
) -> None:
    from app.core.config import Environment

    settings(ENVIRONMENT=Environment.PRODUCTION)
    keys.forget()
    try:
        response = client.get("/.well-known/openid-configuration")
        assert response.status_code == 503
        assert "OIDC_SIGNING_KEY_FILE" in response.json()["detail"]
        assert client.get("/.well-known/jwks.json").json() == {"keys": []}
    finally:
        keys.forget()
