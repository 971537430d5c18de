"""Isolation on the read path (OIDC.md, revision 2): one request's bad value (a NUL byte, a
value the driver cannot encode, a very long one) never fails or delays another request's
read, and a NUL or non-UTF-8 `client_id`, token or form value answers the endpoint's own
4xx. Issue 19, finding 3: on PostgreSQL a NUL `client_id` at introspection failed the other
reads of its pipeline batch, innocent GET /users/me answered 400."""

import asyncio
import base64
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.tokens import start_session
from app.crud.audit import SYSTEM
from app.models.client import ClientCreated
from tests.utils import api, make_user
from tests.utils.oidc import make_client
from tests.utils.server import running_server

USERS = 30
SECONDS = 5.0
ATTACKERS = 4
FORM = {"content-type": "application/x-www-form-urlencoded"}


@dataclass(frozen=True)
class Hostile:
    """A request with a bad value, and the answers its endpoint may give (4xx of its own)."""

    name: str
    method: str
    path: str
    allowed: frozenset[int]
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _basic(client_id: bytes, secret: bytes) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(client_id + b":" + secret).decode()}


def hostile_requests(rs: ClientCreated) -> list[Hostile]:
    secret = str(rs.client_secret).encode()
    good = _basic(rs.client_id.encode(), secret)
    bad_values = {
        "nul": b"a%00b",
        "only-nul": b"%00",
        "cut-utf8": b"%E2%82",
        "lone-surrogate": b"%ED%A0%80",  # U+D800 as UTF-8 bytes: not UTF-8
        "latin1-raw": b"\xff\xfe",
        "long": b"x" * 20_000,
    }
    requests: list[Hostile] = []
    for label, value in bad_values.items():
        for path in ("/oauth/introspect", "/oauth/revoke", "/oauth/token"):
            client_error = frozenset({400, 401})  # invalid_request, or invalid_client
            if label == "long" and path != "/oauth/token":
                client_error |= {200}  # a long token is only unknown: inactive, or revoked
            form = {**FORM}
            requests += [
                Hostile(f"{path} client_id={label}", "POST", path, client_error,
                        b"token=abc&client_id=" + value, form),
                Hostile(f"{path} token={label}", "POST", path, client_error,
                        b"token=" + value, {**form, **good}),
                Hostile(f"{path} other={label}", "POST", path, client_error,
                        b"token=abc&grant_type=refresh_token&refresh_token=" + value
                        + b"&scope=" + value, {**form, **good}),
                Hostile(f"{path} basic id={label}", "POST", path, client_error,
                        b"token=abc", {**form, **_basic(value, secret)}),
            ]  # fmt: skip
    nul_jwt = "eyJhbGciOiJIUzI1NiJ9.%00.x"
    requests += [
        Hostile("bearer %00", "GET", api("/users/me"), frozenset({401}),
                headers={"authorization": f"Bearer {nul_jwt}"}),
        Hostile("bearer userinfo %00", "GET", "/oauth/userinfo", frozenset({401}),
                headers={"authorization": f"Bearer {nul_jwt}"}),
    ]  # fmt: skip
    return requests


@pytest.fixture
def server() -> Iterator[str]:
    with running_server({"RATE_LIMIT_ENABLED": "false"}) as base:
        yield base


def test_hostile_values_never_reach_another_requests_read(server: str, db: Session) -> None:
    """Hostile values at the OAuth endpoints in a loop, beside many users' GET /users/me:
    every innocent answer is 200 and is its own user's, every hostile one a 4xx."""
    users = [make_user(db) for _ in range(USERS)]
    tokens = {}
    for user in users:
        tokens[user.id] = start_session(db, user=user, actor=SYSTEM).access_token
    db.commit()
    rs = make_client(db, name="Orders API", redirect_uris=[], grant_types=["refresh_token"])
    hostile = hostile_requests(rs)
    innocent_wrong: list[str] = []
    hostile_wrong: list[str] = []
    counts = {"innocent": 0, "hostile": 0}

    attacks_over = asyncio.Event()

    async def innocent(client: httpx.AsyncClient, user_id: uuid.UUID, email: str) -> None:
        headers = {"authorization": f"Bearer {tokens[user_id]}"}
        while not attacks_over.is_set():
            response = await client.get(api("/users/me"), headers=headers)
            counts["innocent"] += 1
            body = response.json() if response.status_code == 200 else None
            if body is None or (body["id"], body["email"]) != (str(user_id), email):
                innocent_wrong.append(f"{response.status_code} {response.text[:200]}")

    async def attacker(client: httpx.AsyncClient, share: list[Hostile]) -> None:
        """Its share of the hostile requests, round and round: at least once each, and for
        at least SECONDS."""
        deadline = time.monotonic() + SECONDS
        sent = 0
        while sent < len(share) or time.monotonic() < deadline:
            bad = share[sent % len(share)]
            sent += 1
            response = await client.request(
                bad.method, bad.path, content=bad.body, headers=bad.headers
            )
            counts["hostile"] += 1
            if response.status_code not in bad.allowed:
                hostile_wrong.append(f"{bad.name}: {response.status_code} {response.text[:200]}")

    async def attacks(client: httpx.AsyncClient) -> None:
        shares = [hostile[n::ATTACKERS] for n in range(ATTACKERS)]
        await asyncio.gather(*(attacker(client, share) for share in shares))
        attacks_over.set()

    async def run() -> None:
        limits = httpx.Limits(max_connections=USERS + ATTACKERS)
        async with httpx.AsyncClient(base_url=server, limits=limits, timeout=30) as client:
            await asyncio.gather(
                *(innocent(client, user.id, user.email) for user in users), attacks(client)
            )

    asyncio.run(run())
    wrong = {"innocent": innocent_wrong, "hostile": sorted(set(hostile_wrong))}
    assert wrong == {"innocent": [], "hostile": []}, counts
    assert counts["hostile"] >= len(hostile)  # every hostile request went at least once
    assert counts["innocent"] >= 5 * USERS


@pytest.mark.parametrize("path", ["/oauth/introspect", "/oauth/revoke", "/oauth/token"])
@pytest.mark.parametrize("value", [b"%00", b"a%00b", b"%E2%82", b"%ED%A0%80", b"\xff"])
@pytest.mark.parametrize("name", [b"client_id", b"token", b"refresh_token", b"x%00"])
def test_a_nul_or_non_utf8_form_value_is_invalid_request(
    client: TestClient, path: str, value: bytes, name: bytes
) -> None:
    body = b"grant_type=refresh_token&" + name + b"=" + value
    response = client.post(path, content=body, headers=FORM)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("client_id", [b"%00", b"a%00", b"%E2%82", b"%ED%A0%80"])
def test_a_nul_or_non_utf8_basic_client_id_is_invalid_client(
    client: TestClient, db: Session, client_id: bytes
) -> None:
    rs = make_client(db, name="Orders API", redirect_uris=[], grant_types=["refresh_token"])
    headers = {**FORM, **_basic(client_id, str(rs.client_secret).encode())}
    response = client.post("/oauth/introspect", content=b"token=abc", headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"] == 'Basic realm="oauth"'
