"""Key rotation against live servers (`manage serve`): a relying party's JWKS cache
(PyJWKClient) verifies every token across `manage keys rotate`, and two instances on one
PostgreSQL database agree on the key set: a key staged by the CLI is published and
accepted by each instance, and what one signs the other accepts."""

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from sqlmodel import Session

from app.core.config import get_settings
from app.models.client import ClientCreated
from tests.utils.oidc import make_client
from tests.utils.server import MANAGE, running_server, running_servers

SERVICE = {"redirect_uris": [], "grant_types": ["client_credentials"], "scopes": ["roles"]}
ENV = {"PUBLIC_URL": "http://127.0.0.1:{port}", "RATE_LIMIT_ENABLED": "false"}
TRIES = 4  # requests per check at an instance, each on a new connection (any worker)


def manage_rotate(ahead: int) -> dict[str, str]:
    done = subprocess.run(
        [str(MANAGE), "keys", "rotate"],
        env={**os.environ, "KEY_PUBLISH_AHEAD_SECONDS": str(ahead)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(line.split()[:3:2] for line in done.stdout.strip().splitlines())


def service_token(base: str, registered: ClientCreated) -> str:
    answer = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(registered.client_id, str(registered.client_secret)),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def introspected(base: str, registered: ClientCreated, token: str) -> Any:
    answer = httpx.post(
        f"{base}/oauth/introspect",
        data={"token": token},
        auth=(registered.client_id, str(registered.client_secret)),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["active"]


def kid_of(token: str) -> str:
    return str(pyjwt.get_unverified_header(token)["kid"])


def published(base: str) -> set[str]:
    keys = httpx.get(f"{base}/.well-known/jwks.json", timeout=30).json()["keys"]
    return {key["kid"] for key in keys}


def wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.2)


def test_pyjwkclient_verifies_every_token_across_a_rotation(db: Session) -> None:
    worker = make_client(db, name="Worker", **SERVICE)
    with running_server(ENV) as base:
        # PyJWKClient caches the key set (`lifespan`) and, on an unknown kid, fetches it
        # again at most once per cooldown: a key that signs before the cached set has it is
        # refused. Published KEY_PUBLISH_AHEAD_SECONDS ahead, longer than the cache lives
        # (plus the seconds an instance takes to read the key table), it never is.
        jwks = pyjwt.PyJWKClient(f"{base}/.well-known/jwks.json", lifespan=2)
        seen: dict[str, int] = {}
        failures: list[str] = []

        def sign_in_and_verify() -> None:
            token = service_token(base, worker)
            try:
                key = jwks.get_signing_key_from_jwt(token)
                pyjwt.decode(token, key.key, algorithms=["RS256"], audience=base, issuer=base)
            except pyjwt.PyJWTError as error:
                failures.append(f"{kid_of(token)}: {error!r}")
            seen[kid_of(token)] = seen.get(kid_of(token), 0) + 1

        for _ in range(5):
            sign_in_and_verify()
        new = manage_rotate(ahead=8)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and seen.get(new["RS256"], 0) < 5:
            sign_in_and_verify()
            time.sleep(0.1)
    assert failures == [], (new, seen, failures)
    assert len(seen) == 2 and seen[new["RS256"]] >= 5  # the old key, then the new one


pytestmark_pg = pytest.mark.skipif(
    get_settings().is_sqlite or not os.environ.get("REDIS_URL"),
    reason="needs PostgreSQL (TEST_DATABASE_URL) and Redis (REDIS_URL), as .ci/run provides",
)


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[tuple[str, str]]:
    one_issuer = {"RATE_LIMIT_ENABLED": "false"}  # hosts of one service: one PUBLIC_URL
    with running_servers([one_issuer, one_issuer], workers=2, log_dir=tmp_path) as bases:
        yield bases[0], bases[1]


@pytestmark_pg
def test_two_instances_agree_on_a_rotation(instances: tuple[str, str], db: Session) -> None:
    a, b = instances
    worker = make_client(db, name="Worker", **SERVICE)
    resource = make_client(db, name="Orders API", **SERVICE)
    before_a, before_b = service_token(a, worker), service_token(b, worker)
    assert kid_of(before_a) == kid_of(before_b)  # one key set
    old = kid_of(before_a)

    new = manage_rotate(ahead=8)
    for base in (a, b):  # every worker of each instance publishes the staged keys soon
        wait_for(
            lambda base=base: all(  # type: ignore[misc]
                set(new.values()) <= published(base) for _ in range(TRIES)
            ),
            10,
            f"{base} publishes {new}",
        )
        assert old in published(base)
    assert kid_of(service_token(a, worker)) == old  # staged: signs nothing yet

    wait_for(lambda: kid_of(service_token(a, worker)) == new["RS256"], 15, "A signs with new")
    wait_for(lambda: kid_of(service_token(b, worker)) == new["RS256"], 10, "B signs with new")
    after_a, after_b = service_token(a, worker), service_token(b, worker)
    for base in (a, b):
        for name, token in {"before A": before_a, "before B": before_b, "after A": after_a,
                            "after B": after_b}.items():  # fmt: skip
            answers = [introspected(base, resource, token) for _ in range(TRIES)]
            assert answers == [True] * TRIES, (base, name, kid_of(token), old, new)
        assert {old, *new.values()} <= published(base)
