"""Bearer tokens: every forged, stale or revoked token is a 401; refresh rotation and reuse."""

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jose import jws, jwt
from jose.utils import base64url_decode, base64url_encode
from sqlmodel import Session, select

from app.core.config import Settings, get_settings
from app.models.audit import AuditEvent
from app.models.user import User
from tests.utils import (
    api,
    assert_unauthorized,
    auth_header,
    login,
    refresh_tokens,
)

THREADS = 8


def claims_of(token: str) -> dict[str, Any]:
    return jwt.get_unverified_claims(token)


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def segment(data: dict[str, Any]) -> str:
    return base64url_encode(json.dumps(data).encode()).decode()


def sign(claims: dict[str, Any], *, key: str | None = None, **headers: Any) -> str:
    """A token signed with the service's key (or `key`), with the given claims and header."""
    algorithm = headers.pop("alg", "HS256")
    return jwt.encode(
        claims, key or get_settings().SECRET_KEY, algorithm=algorithm, headers=headers
    )


def me(client: TestClient, token: str) -> Any:
    return client.get(api("/users/me"), headers=auth_header(token))


def reuse_events(db: Session) -> list[AuditEvent]:
    events = db.exec(
        select(AuditEvent).where(AuditEvent.event == "auth.refresh_reuse_detected")
    ).all()
    db.commit()
    return list(events)


# Each forgery starts from a real access token's header and claims and breaks one thing.
def alg_none(token: str) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": kid_of(token)}
    return f"{segment(header)}.{segment(claims_of(token))}."


def alg_none_without_dot(token: str) -> str:
    return alg_none(token).rstrip(".")


def wrong_key(token: str) -> str:
    return sign(claims_of(token), key="another-secret-key-of-sufficient-length!", kid=kid_of(token))


def wrong_algorithm(token: str) -> str:
    return sign(claims_of(token), alg="HS512", kid=kid_of(token))


def unknown_kid(token: str) -> str:
    return sign(claims_of(token), kid="not-a-known-key")


def kid_not_a_string(token: str) -> str:
    return sign(claims_of(token), kid=["not", "a", "string"])


def tampered_payload(token: str) -> str:
    header, _payload, signature = token.split(".")
    claims = claims_of(token) | {"exp": claims_of(token)["exp"] + 3600}
    return f"{header}.{segment(claims)}.{signature}"


def tampered_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64url_decode(signature.encode()))
    raw[0] ^= 1
    return f"{header}.{payload}.{base64url_encode(bytes(raw)).decode()}"


def expired(token: str) -> str:
    past = datetime.now(UTC) - timedelta(minutes=5)
    claims = claims_of(token) | {"iat": int(past.timestamp()) - 60, "exp": int(past.timestamp())}
    return sign(claims, kid=kid_of(token))


def without(claim: str) -> Callable[[str], str]:
    def forge(token: str) -> str:
        claims = claims_of(token)
        del claims[claim]
        return sign(claims, kid=kid_of(token))

    forge.__name__ = f"without_{claim}"
    return forge


def with_claim(name: str, value: Any) -> Callable[[str], str]:
    def forge(token: str) -> str:
        return sign(claims_of(token) | {name: value}, kid=kid_of(token))

    forge.__name__ = f"{name}_{value}"
    return forge


def payload_not_an_object(token: str) -> str:
    """Signed with the service's key, but the payload is a JSON list."""
    payload = json.dumps([claims_of(token)]).encode()
    return jws.sign(payload, get_settings().SECRET_KEY, {"kid": kid_of(token)}, "HS256")


UNKNOWN_ID = uuid.UUID("16bd57e4-4502-4708-98e2-d566b5aec649")  # fixed: one test id per worker
FORGERIES: list[Callable[[str], str]] = [
    alg_none,
    alg_none_without_dot,
    wrong_key,
    wrong_algorithm,
    unknown_kid,
    kid_not_a_string,
    tampered_payload,
    tampered_signature,
    expired,
    without("exp"),
    without("sub"),
    without("sid"),
    without("jti"),
    without("type"),
    with_claim("type", "refresh"),
    with_claim("type", "mfa"),
    with_claim("type", "admin"),
    with_claim("sub", "not-a-uuid"),
    with_claim("sub", str(UNKNOWN_ID)),
    with_claim("sid", str(UNKNOWN_ID)),
    with_claim("sid", 12),
    without("iat"),
    with_claim("iat", "yesterday"),
    with_claim("exp", "9999999999"),  # a number, but not a NumericDate
    with_claim("exp", 9999999999.5),
    with_claim("exp", 10**20),  # past any date
    with_claim("jti", 7),
    payload_not_an_object,
]


@pytest.mark.parametrize("forge", FORGERIES, ids=lambda f: f.__name__)
def test_forged_access_token_is_401(
    client: TestClient, user: User, forge: Callable[[str], str]
) -> None:
    token = login(client, user.email)["access_token"]
    assert me(client, token).status_code == 200  # the original is good
    assert_unauthorized(me(client, forge(token)))


def test_issuer_and_audience_are_checked_when_configured(
    client: TestClient, user: User, settings: Callable[..., Settings]
) -> None:
    settings(JWT_ISSUER="https://auth.example.com", JWT_AUDIENCE="example-api")
    token = login(client, user.email)["access_token"]
    assert claims_of(token)["iss"] == "https://auth.example.com"
    assert claims_of(token)["aud"] == "example-api"
    assert me(client, token).status_code == 200
    for forge in (
        with_claim("iss", "https://elsewhere.example.com"),
        with_claim("aud", "another-api"),
        with_claim("aud", ["example-api", "another-api"]),
        without("iss"),
        without("aud"),
    ):
        assert_unauthorized(me(client, forge(token)))


@pytest.mark.parametrize(
    "forge",
    [alg_none, wrong_key, wrong_algorithm, tampered_payload, expired, with_claim("type", "access")],
    ids=lambda f: f.__name__,
)
def test_forged_refresh_token_is_401(
    client: TestClient, user: User, forge: Callable[[str], str]
) -> None:
    token = login(client, user.email)["refresh_token"]
    assert_unauthorized(refresh_tokens(client, forge(token)))
    assert refresh_tokens(client, token).status_code == 200  # the forgery spent nothing


def test_token_signed_with_the_service_key_and_a_stranger_session_is_401(
    client: TestClient, user: User, moderator: User
) -> None:
    """A valid signature names the user and the session; both must belong together."""
    mine = login(client, user.email)["access_token"]
    theirs = login(client, moderator.email)["access_token"]
    forged = sign(claims_of(mine) | {"sid": claims_of(theirs)["sid"]}, kid=kid_of(mine))
    assert_unauthorized(me(client, forged))


def test_refresh_token_used_as_access_token_is_401(client: TestClient, user: User) -> None:
    tokens = login(client, user.email)
    assert_unauthorized(me(client, tokens["refresh_token"]))


def test_access_token_used_at_refresh_is_401(client: TestClient, user: User) -> None:
    tokens = login(client, user.email)
    assert_unauthorized(refresh_tokens(client, tokens["access_token"]))


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param("", id="empty-header"),
        pytest.param("Bearer", id="scheme-only"),
        pytest.param("Bearer ", id="empty-token"),
        pytest.param("Bearer garbage", id="garbage"),
        pytest.param("Bearer a.b.c", id="three-garbage-segments"),
        pytest.param("Bearer ....", id="dots"),
        pytest.param("Bearer " + "x" * 5000, id="oversized"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic-scheme"),
    ],
)
def test_missing_empty_or_garbage_bearer_is_401(
    client: TestClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_unauthorized(client.get(api("/users/me"), headers=headers))


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "é" * 10])
def test_garbage_refresh_token_is_401(client: TestClient, token: str) -> None:
    assert_unauthorized(refresh_tokens(client, token))


def test_access_token_of_a_logged_out_session_is_401(client: TestClient, user: User) -> None:
    token = login(client, user.email)["access_token"]
    assert client.post(api("/auth/logout"), headers=auth_header(token)).status_code == 204
    assert_unauthorized(me(client, token))


def test_tokens_of_a_deleted_user_are_401(
    client: TestClient, user: User, admin_headers: dict[str, str]
) -> None:
    tokens = login(client, user.email)
    response = client.delete(api(f"/users/{user.id}"), headers=admin_headers)
    assert response.status_code == 204
    assert_unauthorized(me(client, tokens["access_token"]))
    assert_unauthorized(refresh_tokens(client, tokens["refresh_token"]))


def test_tokens_of_a_deactivated_user_are_401_at_once(
    client: TestClient, user: User, admin_headers: dict[str, str]
) -> None:
    tokens = login(client, user.email)
    response = client.patch(
        api(f"/users/{user.id}"), json={"is_active": False}, headers=admin_headers
    )
    assert response.status_code == 200
    assert_unauthorized(me(client, tokens["access_token"]))
    assert_unauthorized(refresh_tokens(client, tokens["refresh_token"]))


def test_tokens_of_a_deactivated_user_stay_dead_after_reactivation(
    client: TestClient, user: User, admin_headers: dict[str, str]
) -> None:
    """Deactivation ends the sessions; reactivating the account does not revive them."""
    tokens = login(client, user.email)
    url = api(f"/users/{user.id}")
    assert client.patch(url, json={"is_active": False}, headers=admin_headers).status_code == 200
    assert client.patch(url, json={"is_active": True}, headers=admin_headers).status_code == 200
    assert_unauthorized(me(client, tokens["access_token"]))
    assert login(client, user.email)["access_token"]


def test_token_claims_follow_the_contract(client: TestClient, user: User) -> None:
    tokens = login(client, user.email)
    access, refresh = claims_of(tokens["access_token"]), claims_of(tokens["refresh_token"])
    assert access["type"] == "access"
    assert refresh["type"] == "refresh"
    assert access["sub"] == refresh["sub"] == str(user.id)
    assert access["sid"] == refresh["sid"]
    assert access["jti"] != refresh["jti"]
    assert {"iat", "exp"} <= access.keys()
    assert kid_of(tokens["access_token"])
    assert jwt.get_unverified_header(tokens["access_token"])["alg"] == "HS256"


def test_refresh_rotates_both_tokens_within_the_same_session(
    client: TestClient, user: User
) -> None:
    first = login(client, user.email)
    response = refresh_tokens(client, first["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert claims_of(second["refresh_token"])["jti"] != claims_of(first["refresh_token"])["jti"]
    assert claims_of(second["access_token"])["sid"] == claims_of(first["access_token"])["sid"]
    assert me(client, second["access_token"]).status_code == 200
    assert refresh_tokens(client, second["refresh_token"]).status_code == 200


def test_reusing_a_spent_refresh_token_revokes_the_whole_session(
    client: TestClient, user: User, db: Session, settings: Callable[..., Settings]
) -> None:
    settings(REFRESH_REUSE_GRACE_SECONDS=0)
    first = login(client, user.email)
    other_session = login(client, user.email)
    second = refresh_tokens(client, first["refresh_token"]).json()

    assert_unauthorized(refresh_tokens(client, first["refresh_token"]))  # reuse

    assert_unauthorized(refresh_tokens(client, second["refresh_token"]))
    assert_unauthorized(me(client, second["access_token"]))
    assert_unauthorized(me(client, first["access_token"]))
    assert me(client, other_session["access_token"]).status_code == 200
    events = reuse_events(db)
    assert len(events) == 1
    assert events[0].subject_id == user.id
    assert events[0].detail["session_id"] == claims_of(first["access_token"])["sid"]
    assert first["refresh_token"] not in json.dumps(events[0].detail)


def test_reuse_after_several_rotations_revokes_the_session(client: TestClient, user: User) -> None:
    tokens = [login(client, user.email)]
    for _ in range(3):
        tokens.append(refresh_tokens(client, tokens[-1]["refresh_token"]).json())
    assert_unauthorized(refresh_tokens(client, tokens[1]["refresh_token"]))
    assert_unauthorized(refresh_tokens(client, tokens[-1]["refresh_token"]))
    assert_unauthorized(me(client, tokens[-1]["access_token"]))


def test_grace_period_lets_the_just_spent_token_continue_the_session(
    client: TestClient, user: User, db: Session, settings: Callable[..., Settings]
) -> None:
    settings(REFRESH_REUSE_GRACE_SECONDS=30)
    first = login(client, user.email)
    second = refresh_tokens(client, first["refresh_token"]).json()

    again = refresh_tokens(client, first["refresh_token"])

    assert again.status_code == 200
    late = again.json()
    sid = claims_of(first["access_token"])["sid"]
    assert claims_of(late["access_token"])["sid"] == sid
    assert me(client, late["access_token"]).status_code == 200
    assert me(client, second["access_token"]).status_code == 200
    assert refresh_tokens(client, late["refresh_token"]).status_code == 200
    assert reuse_events(db) == []


def test_grace_period_covers_only_the_token_spent_last(
    client: TestClient, user: User, db: Session, settings: Callable[..., Settings]
) -> None:
    settings(REFRESH_REUSE_GRACE_SECONDS=30)
    first = login(client, user.email)
    second = refresh_tokens(client, first["refresh_token"]).json()
    third = refresh_tokens(client, second["refresh_token"]).json()

    assert_unauthorized(refresh_tokens(client, first["refresh_token"]))

    assert_unauthorized(me(client, third["access_token"]))
    assert_unauthorized(refresh_tokens(client, third["refresh_token"]))
    assert len(reuse_events(db)) == 1


def test_grace_period_does_not_revive_a_logged_out_session(
    client: TestClient, user: User, settings: Callable[..., Settings]
) -> None:
    settings(REFRESH_REUSE_GRACE_SECONDS=30)
    first = login(client, user.email)
    second = refresh_tokens(client, first["refresh_token"]).json()
    assert client.post(api("/auth/logout"), headers=auth_header(second)).status_code == 204
    assert_unauthorized(refresh_tokens(client, first["refresh_token"]))
    assert_unauthorized(refresh_tokens(client, second["refresh_token"]))


def test_without_grace_period_an_immediate_reuse_revokes(
    client: TestClient, user: User, settings: Callable[..., Settings]
) -> None:
    settings(REFRESH_REUSE_GRACE_SECONDS=0)
    first = login(client, user.email)
    second = refresh_tokens(client, first["refresh_token"]).json()
    assert_unauthorized(refresh_tokens(client, first["refresh_token"]))
    assert_unauthorized(me(client, second["access_token"]))


def test_concurrent_refreshes_with_one_token_rotate_at_most_once(
    client: TestClient, user: User, settings: Callable[..., Settings]
) -> None:
    settings(REFRESH_REUSE_GRACE_SECONDS=0)
    token = login(client, user.email)["refresh_token"]
    barrier = threading.Barrier(THREADS)

    def attempt(_: int) -> int:
        barrier.wait()
        return refresh_tokens(client, token).status_code

    with ThreadPoolExecutor(THREADS) as pool:
        statuses = list(pool.map(attempt, range(THREADS)))

    assert statuses.count(200) <= 1
    assert statuses.count(401) == THREADS - statuses.count(200)


def test_concurrent_refreshes_within_grace_period_all_continue_one_session(
    client: TestClient, user: User, db: Session, settings: Callable[..., Settings]
) -> None:
    settings(REFRESH_REUSE_GRACE_SECONDS=30)
    first = login(client, user.email)
    barrier = threading.Barrier(THREADS)

    def attempt(_: int) -> Any:
        barrier.wait()
        return refresh_tokens(client, first["refresh_token"])

    with ThreadPoolExecutor(THREADS) as pool:
        responses = list(pool.map(attempt, range(THREADS)))

    assert [r.status_code for r in responses] == [200] * THREADS
    sid = claims_of(first["access_token"])["sid"]
    assert {claims_of(r.json()["access_token"])["sid"] for r in responses} == {sid}
    assert reuse_events(db) == []
