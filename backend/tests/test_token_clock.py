"""A token issued (`iat`) or valid from (`nbf`) more than 60 s in the future is a 401: no
clock of this service made it, whoever holds the key."""

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jose import jwt

from app.core.config import get_settings
from app.core.security import MAX_CLOCK_SKEW_S
from app.models.user import User
from tests.utils import api, assert_unauthorized, auth_header, login, refresh_tokens


def resigned(token: str, **claims: Any) -> str:
    """`token` with `claims` changed, signed again with the service's key and kid."""
    header = jwt.get_unverified_header(token)
    body = jwt.get_unverified_claims(token) | claims
    return jwt.encode(body, get_settings().SECRET_KEY, algorithm="HS256", headers=header)


def me(client: TestClient, token: str) -> Any:
    return client.get(api("/users/me"), headers=auth_header(token))


FUTURE = MAX_CLOCK_SKEW_S + 60


@pytest.mark.parametrize(
    "claims",
    [
        {"iat": FUTURE},
        {"iat": 10**9},  # years ahead
        {"nbf": FUTURE},
        {"nbf": "now"},
        {"nbf": 1.5},
    ],
    ids=["iat-2-min-ahead", "iat-years-ahead", "nbf-2-min-ahead", "nbf-a-string", "nbf-a-float"],
)
def test_access_token_from_the_future_is_401(
    client: TestClient, user: User, claims: dict[str, Any]
) -> None:
    token = login(client, user.email)["access_token"]
    now = int(time.time())
    shifted = {k: now + v if isinstance(v, int) else v for k, v in claims.items()}
    assert_unauthorized(me(client, resigned(token, **shifted)))


def test_refresh_token_issued_in_the_future_is_401(client: TestClient, user: User) -> None:
    token = login(client, user.email)["refresh_token"]
    assert_unauthorized(refresh_tokens(client, resigned(token, iat=int(time.time()) + FUTURE)))


@pytest.mark.parametrize(
    "claims",
    [{"iat": 30}, {"nbf": 30}, {"nbf": -600}],
    ids=["iat-30-s-ahead", "nbf-30-s-ahead", "nbf-past"],
)
def test_small_clock_skew_and_past_nbf_are_accepted(
    client: TestClient, user: User, claims: dict[str, int]
) -> None:
    token = login(client, user.email)["access_token"]
    now = int(time.time())
    assert me(client, resigned(token, **{k: now + v for k, v in claims.items()})).status_code == 200
