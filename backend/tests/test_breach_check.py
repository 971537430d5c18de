"""PASSWORD_BREACH_CHECK=hibp against a local stand-in of the range API: a listed password is
refused (422, rule `breached`), only 5 hex characters of its SHA-1 leave the service, and a
slow or failing API lets the password through with a log line that holds none of it."""

import logging
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from app.auth.new_password import new_password_hash_sync
from app.core.config import Settings
from app.errors import WeakPassword
from tests.utils import api
from tests.utils.hibp import RangeApi, range_api, sha1_hex

LEAKED = "tangerine kettle marmalade"  # uncommon enough for the offline list, "leaked" here
FRESH = "quartz heron lantern violet"


@pytest.fixture
def hibp(settings: Callable[..., Settings]) -> Iterator[RangeApi]:
    with range_api() as stub:
        stub.breached.add(LEAKED)
        settings(PASSWORD_BREACH_CHECK="hibp", HIBP_RANGE_URL=stub.url, HIBP_TIMEOUT_SECONDS=0.5)
        yield stub


def register(client: TestClient, email: str, password: str) -> tuple[int, dict[str, object]]:
    response = client.post(api("/auth/register"), json={"email": email, "password": password})
    return response.status_code, response.json()


def test_a_password_the_range_api_lists_is_refused(client: TestClient, hibp: RangeApi) -> None:
    status, body = register(client, "ada@example.com", LEAKED)
    assert status == 422, body
    [error] = body["detail"]  # type: ignore[misc]
    assert error["ctx"] == {"rule": "breached"} and "known data breach" in error["msg"]
    assert LEAKED not in str(body) and sha1_hex(LEAKED)[:5] not in str(body)
    assert register(client, "ada@example.com", FRESH)[0] == 201


def test_only_five_hex_characters_leave_the_service_with_padding_asked(
    client: TestClient, hibp: RangeApi
) -> None:
    register(client, "ada@example.com", FRESH)
    assert hibp.asked == [(f"/range/{sha1_hex(FRESH)[:5]}", "true")]


def test_the_command_line_path_asks_the_same_api(hibp: RangeApi) -> None:
    with pytest.raises(WeakPassword) as refused:
        new_password_hash_sync(LEAKED, email="ada@example.com", full_name=None)
    assert refused.value.rule == "breached"
    assert new_password_hash_sync(FRESH, email="ada@example.com", full_name=None).startswith("$2")


@pytest.mark.parametrize("failure", ["timeout", "server-error", "nobody-listening"])
def test_an_unavailable_api_lets_the_password_through_and_logs_it_without_the_password(
    client: TestClient,
    hibp: RangeApi,
    settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    if failure == "timeout":
        hibp.delay_s = 1.5  # past HIBP_TIMEOUT_SECONDS (0.5)
    elif failure == "server-error":
        hibp.status = 503
    else:
        settings(HIBP_RANGE_URL="http://127.0.0.1:9/range/")  # the discard port: refused
    with caplog.at_level(logging.WARNING, logger="app.core.breach_check"):
        status, body = register(client, "ada@example.com", LEAKED)
        assert new_password_hash_sync(LEAKED, email="bob@example.com", full_name=None)
    assert status == 201, body
    lines = [r.getMessage() for r in caplog.records if r.name == "app.core.breach_check"]
    assert len(lines) == 2 and all("let through" in line for line in lines)
    digest = sha1_hex(LEAKED)
    assert not any(LEAKED in line or digest[:5] in line for line in lines)


def test_the_check_is_off_by_default(client: TestClient) -> None:
    with range_api() as stub:
        stub.breached.add(LEAKED)
        assert register(client, "ada@example.com", LEAKED)[0] == 201
        assert stub.asked == []
