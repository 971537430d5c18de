"""`require_pkce` per client (OIDC.md revision 2, "PKCE"): registered by the API, the CLI and
the console; never false for a public client; true for the clients that existed before it.
The protocol side (a sign-in without PKCE, the downgrade) is in test_oidc_conformance.py."""

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlmodel import Session

from app.core.config import Settings
from app.db import get_engine
from app.models.client import OAuthClient
from app.models.user import User
from tests.test_cli import manage
from tests.test_migrations import migrate
from tests.utils import api
from tests.utils.console import alert, csrf, sign_in
from tests.utils.oidc import ISSUER

BODY = {"name": "Suite RP", "redirect_uris": ["https://rp.example.com/cb"]}


def stored(client_id: str) -> OAuthClient:
    with Session(get_engine()) as session:
        row = session.get(OAuthClient, client_id)
    assert row is not None
    return row


def test_the_api_registers_a_confidential_client_without_pkce_and_can_change_it(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    default = client.post(api("/clients"), json=BODY, headers=admin_headers)
    assert default.status_code == 201 and default.json()["require_pkce"] is True

    created = client.post(
        api("/clients"), json={**BODY, "require_pkce": False}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    client_id = created.json()["client_id"]
    assert created.json()["require_pkce"] is False and stored(client_id).require_pkce is False
    one = client.get(api(f"/clients/{client_id}"), headers=admin_headers).json()
    listed = client.get(api("/clients"), headers=admin_headers).json()["items"]
    assert one["require_pkce"] is False
    assert sorted(item["require_pkce"] for item in listed) == [False, True]

    patched = client.patch(
        api(f"/clients/{client_id}"), json={"require_pkce": True}, headers=admin_headers
    )
    assert patched.status_code == 200 and patched.json()["require_pkce"] is True
    assert stored(client_id).require_pkce is True


def test_a_public_client_cannot_opt_out_of_pkce(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    refused = client.post(
        api("/clients"), json={**BODY, "public": True, "require_pkce": False}, headers=admin_headers
    )
    assert refused.status_code == 422
    assert "PKCE" in refused.text

    public = client.post(api("/clients"), json={**BODY, "public": True}, headers=admin_headers)
    client_id = public.json()["client_id"]
    patched = client.patch(
        api(f"/clients/{client_id}"), json={"require_pkce": False}, headers=admin_headers
    )
    assert patched.status_code == 400 and "PKCE" in patched.json()["detail"]
    assert stored(client_id).require_pkce is True


def test_manage_client_create_no_require_pkce(client: TestClient, tmp_path: Path) -> None:
    created = manage(
        "client", "create", "Suite RP", "--redirect-uri", "https://rp.example.com/cb",
        "--no-require-pkce", cwd=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    client_id = dict(line.split(": ", 1) for line in created.stdout.strip().splitlines())[
        "client_id"
    ]
    assert stored(client_id).require_pkce is False
    listed = manage("client", "list", cwd=tmp_path)
    assert "PKCE optional" in listed.stdout

    public = manage(
        "client", "create", "SPA", "--public", "--redirect-uri", "https://rp.example.com/cb",
        "--no-require-pkce", cwd=tmp_path,
    )  # fmt: skip
    assert public.returncode == 2 and "must use PKCE" in public.stderr
    assert "Traceback" not in public.stderr


def test_the_console_registers_a_client_without_pkce_but_never_a_public_one(
    client: TestClient, admin: User, settings: Callable[..., Settings]
) -> None:
    settings(PUBLIC_URL=ISSUER)
    b, html = sign_in(client, admin.email, "/admin/clients")
    assert 'name="no_pkce"' in html
    form = {
        "csrf_token": csrf(html),
        "name": "Suite RP",
        "redirect_uris": "https://rp.example.com/cb",
        "grant": "authorization_code",
        "no_pkce": "yes",
    }
    created = b.post("/admin/clients", data=form)
    assert created.status_code == 201, created.text
    with Session(get_engine()) as session:
        row = session.exec(
            sa.select(OAuthClient).where(OAuthClient.name == "Suite RP")
        ).scalar_one()
    assert row.require_pkce is False
    assert "PKCE optional" in b.get("/admin/clients").text

    public = b.post("/admin/clients", data={**form, "name": "SPA", "public": "yes"})
    assert public.status_code == 422
    assert "must use PKCE" in (alert(public.text) or "")


def test_clients_registered_before_the_migration_keep_requiring_pkce(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'before.db'}")
    try:
        migrate(engine, "0008")
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO oauth_client (client_id, name, redirect_uris,"
                    " post_logout_redirect_uris, public, first_party, grant_types, scopes,"
                    " created_at, updated_at) VALUES ('old', 'Old', '[]', '[]', false, false,"
                    " '[]', '[]', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
        migrate(engine, "head")
        with engine.connect() as connection:
            value = connection.execute(
                sa.text("SELECT require_pkce FROM oauth_client WHERE client_id = 'old'")
            ).scalar_one()
        assert value in (True, 1)
    finally:
        engine.dispose()
