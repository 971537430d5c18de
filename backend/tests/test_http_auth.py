"""Errors carry their answer: RFC 6750 challenges built from the error's fields, quoted, and
the same status, headers and body whichever handler writes them."""

import pytest
from fastapi.testclient import TestClient

from app import errors
from app.core.http_auth import bearer_challenge
from app.oauth import errors as oauth_errors


def test_a_challenge_without_an_error_is_the_bare_scheme() -> None:
    assert bearer_challenge() == "Bearer"


def test_a_challenge_quotes_each_attribute_and_keeps_out_what_a_quoted_string_cannot_hold() -> None:
    challenge = bearer_challenge(
        "invalid_token", description='a "quoted" \\ value\r\nInjected: 1', scope="a b"
    )
    assert challenge == (
        'Bearer error="invalid_token", error_description="a ?quoted? ? value??Injected: 1",'
        ' scope="a b"'
    )


@pytest.mark.parametrize(
    ("error", "status", "header"),
    [
        (errors.InvalidToken(), 401, "Bearer"),
        (errors.MfaFailed(), 401, "Bearer"),
        (errors.InsufficientScope({"users:read", "account"}), 403,
         'Bearer error="insufficient_scope", scope="account users:read"'),
        (errors.Forbidden(), 403, None),
        (errors.NotFound(), 404, None),
        (errors.PasskeyRefused(), 400, None),
        (errors.MfaAlreadyEnabled(), 409, None),
    ],
)  # fmt: skip
def test_domain_errors_carry_their_status_and_challenge(
    error: errors.DomainError, status: int, header: str | None
) -> None:
    assert error.status == status
    assert error.headers().get("WWW-Authenticate") == header
    assert error.body() == {"detail": error.detail}


def test_rate_limits_and_outages_say_when_to_come_back() -> None:
    assert errors.AccountLocked(retry_after=42).headers() == {"Retry-After": "42"}
    assert errors.HashQueueFull().status == 503
    assert errors.HashQueueFull().headers() == {"Retry-After": "5"}


def test_protocol_errors_carry_their_challenge() -> None:
    assert oauth_errors.MissingBearer("none").headers() == {"WWW-Authenticate": "Bearer"}
    bad = oauth_errors.InvalidBearer('expired "x"')
    assert bad.headers() == {
        "WWW-Authenticate": 'Bearer error="invalid_token", error_description="expired ?x?"'
    }
    assert oauth_errors.InvalidClient(basic=True).headers() == {
        "WWW-Authenticate": 'Basic realm="oauth"'
    }
    assert oauth_errors.InvalidClient().headers() == {}
    assert oauth_errors.InvalidGrant("no").body() == {
        "error": "invalid_grant",
        "error_description": "no",
    }


def test_userinfo_answers_each_challenge(client: TestClient) -> None:
    missing = client.get("/oauth/userinfo")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.headers["cache-control"] == "no-store"
    wrong = client.get("/oauth/userinfo", headers={"Authorization": "Bearer x.y.z"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith('Bearer error="invalid_token", ')
