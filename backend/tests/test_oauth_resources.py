"""Tokens for the product's API resources and organizations (AUTHZ.md, "Tokens"): the client's
registration, RFC 8707 `resource`, `organization`, and the claims they put in tokens."""

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.db import get_engine
from app.models.client import OAuthClient
from tests.test_authz import ORDERS, create_resource
from tests.test_cli import manage, refused
from tests.utils import api

WEB_APP = {"name": "Shop", "redirect_uris": ["https://app.example.com/callback"]}


def register(client: TestClient, headers: dict[str, str], **fields: Any) -> Any:
    return client.post(api("/clients"), json={**WEB_APP, **fields}, headers=headers)


# Registration


def test_a_client_is_registered_for_resources_and_an_organization_usage(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    create_resource(client, admin_headers)
    created = register(
        client, admin_headers, resources=[ORDERS, ORDERS], organization_usage="require"
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["resources"] == [ORDERS] and body["organization_usage"] == "require"
    with Session(get_engine()) as session:
        row = session.get(OAuthClient, body["client_id"])
        assert row is not None and row.resources == [ORDERS]
        assert row.organization_usage == "require"

    plain = register(client, admin_headers).json()
    assert plain["resources"] == [] and plain["organization_usage"] == "none"
    patched = client.patch(
        api(f"/clients/{plain['client_id']}"),
        json={"resources": [ORDERS], "organization_usage": "allow"},
        headers=admin_headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["resources"] == [ORDERS]
    assert patched.json()["organization_usage"] == "allow"


def test_an_unknown_resource_or_usage_is_422_at_registration(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    unknown = register(client, admin_headers, resources=["https://nowhere.example.com"])
    assert unknown.status_code == 422
    assert "https://nowhere.example.com" in unknown.text
    for bad in ({"resources": ["not a uri"]}, {"resources": "x"}, {"organization_usage": "all"},
                {"resources": [None]}):  # fmt: skip
        assert register(client, admin_headers, **bad).status_code == 422, bad
    plain = register(client, admin_headers).json()
    patched = client.patch(
        api(f"/clients/{plain['client_id']}"),
        json={"resources": ["https://nowhere.example.com"]},
        headers=admin_headers,
    )
    assert patched.status_code == 422
    assert client.get(api("/clients"), headers=admin_headers).json()["total"] == 1


def test_manage_client_create_takes_resources_and_an_organization_usage(
    client: TestClient, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    create_resource(client, admin_headers)
    uri = WEB_APP["redirect_uris"][0]
    result = manage("client", "create", "Shop", "--redirect-uri", uri, "--resource", ORDERS,
                    "--organization-usage", "allow", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    client_id = result.stdout.split()[1]
    with Session(get_engine()) as session:
        row = session.get(OAuthClient, client_id)
        assert row is not None and row.resources == [ORDERS]
        assert row.organization_usage == "allow"
    line = refused(manage("client", "create", "Shop", "--redirect-uri", uri,
                          "--resource", "https://nowhere.example.com", cwd=tmp_path))  # fmt: skip
    assert "https://nowhere.example.com" in line
    usage = manage("client", "create", "Shop", "--organization-usage", "some", cwd=tmp_path)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr  # click's usage error
