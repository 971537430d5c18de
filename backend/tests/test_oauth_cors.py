"""The OAuth endpoints' CORS origins are cached per process and checked against the version of
the client rows at every request: a client created, changed or deleted, by this worker or any
other sharing the database, counts at the next request, and a request costs one read on the
event loop and no worker thread."""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event
from sqlmodel import Session

from app.api import oauth_cors
from app.core.config import get_settings
from app.crud import clients
from app.models.client import OAuthClient
from tests.utils import PASSWORD, api
from tests.utils.server import running_server

APP_ORIGIN = "http://localhost:5173"
PREFLIGHT = {"Access-Control-Request-Method": "POST"}


def allowed(client: TestClient, origin: str = APP_ORIGIN) -> bool:
    """Whether a browser app at `origin` may call the token endpoint (its preflight)."""
    answer = client.options("/oauth/token", headers={"Origin": origin, **PREFLIGHT})
    assert answer.status_code in (204, 400), answer.text
    return answer.status_code == 204 and answer.headers["access-control-allow-origin"] == origin


def public_client(origin: str = APP_ORIGIN) -> dict[str, Any]:
    return {"name": "SPA", "public": True, "redirect_uris": [f"{origin}/callback"]}


def test_a_new_public_clients_origin_is_allowed_at_the_next_request(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    assert not allowed(client)  # and the origins are cached without it
    created = client.post(api("/clients"), json=public_client(), headers=admin_headers)
    assert created.status_code == 201, created.text
    assert allowed(client)


def test_a_changed_or_deleted_clients_origin_is_refused_at_the_next_request(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    created = client.post(api("/clients"), json=public_client(), headers=admin_headers).json()
    path = api(f"/clients/{created['client_id']}")
    assert allowed(client)

    moved = {"redirect_uris": ["http://localhost:4200/callback"]}
    assert client.patch(path, json=moved, headers=admin_headers).status_code == 200
    assert not allowed(client) and allowed(client, "http://localhost:4200")

    assert client.delete(path, headers=admin_headers).status_code == 204
    assert not allowed(client, "http://localhost:4200")


def test_a_client_written_through_another_engine_and_session_counts_at_the_next_request(
    client: TestClient,
) -> None:
    """Another worker's change: its own engine and session, the ORM row written directly."""
    assert not allowed(client)
    other_worker = create_engine(get_settings().DATABASE_URL)
    try:
        with Session(other_worker) as session:
            row = OAuthClient(
                client_id="spa-elsewhere",
                name="SPA",
                public=True,
                redirect_uris=[f"{APP_ORIGIN}/callback"],
                grant_types=["authorization_code"],
                scopes=["openid"],
            )
            session.add(row)
            session.commit()
            assert allowed(client)
            session.delete(row)
            session.commit()
            assert not allowed(client)
    finally:
        other_worker.dispose()


def test_a_client_created_and_deleted_through_another_server_process_counts_here(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    assert not allowed(client)
    with running_server() as other:
        token = httpx.post(
            f"{other}/api/v1/auth/login",
            data={"username": "admin@example.com", "password": PASSWORD},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{other}/api/v1/clients", json=public_client(), headers=headers)
        assert created.status_code == 201, created.text
        assert allowed(client)
        deleted = httpx.delete(
            f"{other}/api/v1/clients/{created.json()['client_id']}", headers=headers
        )
        assert deleted.status_code == 204
        assert not allowed(client)


class Costs:
    """What the CORS layer spends on one request: version reads on the event loop, worker
    thread hops, and statements through the engine (the origins' reads)."""

    def __init__(self) -> None:
        self.reads = self.hops = self.statements = 0

    def reset(self) -> tuple[int, int, int]:
        spent = (self.reads, self.hops, self.statements)
        self.reads = self.hops = self.statements = 0
        return spent


@pytest.fixture
def costs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Costs]:
    counted = Costs()
    real_read, real_hop = clients.read_first, oauth_cors.run_step

    async def read_first(*args: Any) -> Any:
        counted.reads += 1
        return await real_read(*args)

    async def run_step(function: Callable[..., Any], *args: Any) -> Any:
        counted.hops += 1
        return await real_hop(function, *args)

    def statement(*_: Any) -> None:
        counted.statements += 1

    monkeypatch.setattr(clients, "read_first", read_first)
    monkeypatch.setattr(oauth_cors, "run_step", run_step)
    engine = oauth_cors.get_engine()
    event.listen(engine, "before_cursor_execute", statement)
    yield counted
    event.remove(engine, "before_cursor_execute", statement)


def test_a_cors_request_reads_the_version_on_the_event_loop_and_the_origins_only_on_a_change(
    client: TestClient, admin_headers: dict[str, str], costs: Costs
) -> None:
    """Preflights: the CORS layer answers them itself, so what is counted is its own work."""
    allowed(client)  # the origins as they are now, cached
    costs.reset()

    for _ in range(3):
        assert not allowed(client)
        assert costs.reset() == (1, 0, 0)  # one read of the version; no thread, no statement
    assert allowed(client, "http://localhost:3000")
    assert costs.reset() == (0, 0, 0)  # a configured origin (BACKEND_CORS_ORIGINS): no read
    client.get("/.well-known/jwks.json")
    assert costs.reset()[:2] == (0, 0)  # no Origin: no CORS work at all

    client.post(api("/clients"), json=public_client(), headers=admin_headers)
    costs.reset()
    assert allowed(client)
    reads, hops, statements = costs.reset()
    assert (reads, hops) == (1, 1) and statements >= 1  # changed: the origins read once
    assert allowed(client)
    assert costs.reset() == (1, 0, 0)
