"""A client's `id_token_signed_response_alg`: RS256 unless it registered ES256 (OIDC.md,
revision 2, "RS256 always"), through the API and `manage client create --id-token-alg`."""

from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.db import get_engine
from app.models.client import OAuthClient
from tests.test_cli import manage
from tests.utils import api

BODY = {"name": "Dashboard", "redirect_uris": ["https://dash.example.com/cb"]}


def stored_alg(client_id: str) -> str:
    with Session(get_engine()) as session:
        row = session.get(OAuthClient, client_id)
        assert row is not None
        return row.id_token_signed_response_alg


def test_a_client_gets_rs256_id_tokens_unless_it_registers_es256(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    default = client.post(api("/clients"), json=BODY, headers=admin_headers).json()
    assert default["id_token_signed_response_alg"] == "RS256"
    assert stored_alg(default["client_id"]) == "RS256"

    es256 = client.post(
        api("/clients"),
        json={**BODY, "id_token_signed_response_alg": "ES256"},
        headers=admin_headers,
    )
    assert es256.status_code == 201, es256.text
    assert es256.json()["id_token_signed_response_alg"] == "ES256"
    assert stored_alg(es256.json()["client_id"]) == "ES256"

    patched = client.patch(
        api(f"/clients/{default['client_id']}"),
        json={"id_token_signed_response_alg": "ES256"},
        headers=admin_headers,
    )
    assert patched.status_code == 200 and patched.json()["id_token_signed_response_alg"] == "ES256"

    for alg in ("HS256", "none", "PS256"):
        refused = client.post(
            api("/clients"),
            json={**BODY, "id_token_signed_response_alg": alg},
            headers=admin_headers,
        )
        assert refused.status_code == 422


def test_manage_client_create_takes_the_id_token_algorithm(tmp_path: Path) -> None:
    created = manage(
        "client", "create", "CLI App", "--redirect-uri", "https://cli.example.com/cb",
        "--id-token-alg", "ES256", cwd=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    client_id = dict(line.split(": ", 1) for line in created.stdout.strip().splitlines())[
        "client_id"
    ]
    assert stored_alg(client_id) == "ES256"
    bad = manage(
        "client", "create", "X", "--redirect-uri", "https://x.example.com/cb",
        "--id-token-alg", "HS256", cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
