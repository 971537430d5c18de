"""Clients race themselves at refresh (two tabs, an axios interceptor retrying two requests):
within REFRESH_REUSE_GRACE_SECONDS (default 10) of a rotation the token it spent gets the
session's *current* refresh token (one chain, audited); after it, reuse revokes."""

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from jose import jwt
from sqlalchemy import update
from sqlmodel import Session, col, select

from app.core.config import Settings, get_settings
from app.models.audit import AuditEvent
from app.models.session import AuthSession
from app.models.user import User
from tests.utils import api, assert_unauthorized, auth_header, login, refresh_tokens

RACES = 20


def jti_of(token: str) -> str:
    return str(jwt.get_unverified_claims(token)["jti"])


def sid_of(tokens: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(jwt.get_unverified_claims(tokens["access_token"])["sid"])


def session_row(db: Session, sid: uuid.UUID) -> AuthSession:
    row = db.exec(select(AuthSession).where(AuthSession.id == sid)).one()
    db.refresh(row)
    db.commit()
    return row


def events(db: Session, name: str) -> list[AuditEvent]:
    found = list(db.exec(select(AuditEvent).where(AuditEvent.event == name)).all())
    db.commit()
    return found


def age_rotation(db: Session, sid: uuid.UUID, seconds: int) -> None:
    """Pretend the session's last rotation happened `seconds` earlier."""
    row = session_row(db, sid)
    assert row.rotated_at is not None
    db.exec(
        update(AuthSession)
        .where(col(AuthSession.id) == sid)
        .values(rotated_at=row.rotated_at - timedelta(seconds=seconds))
    )
    db.commit()


def me_status(client: TestClient, tokens: dict[str, Any]) -> int:
    return client.get(api("/users/me"), headers=auth_header(tokens)).status_code


def test_the_default_grace_is_ten_seconds() -> None:
    assert Settings.model_fields["REFRESH_REUSE_GRACE_SECONDS"].default == 10


def test_two_refreshes_at_once_continue_one_chain(
    client: TestClient, user: User, db: Session
) -> None:
    """The axios race, repeated along one session: each time both answers are 200 with the
    same refresh token, exactly one rotation happened, the session is alive, the grace
    answer is audited and no reuse is detected."""
    barrier = threading.Barrier(2)

    def refresh(token: str) -> Any:
        barrier.wait()
        return refresh_tokens(client, token)

    first = login(client, user.email)
    sid = sid_of(first)
    spent = first["refresh_token"]
    with ThreadPoolExecutor(2) as pool:
        for _ in range(RACES):
            answers = list(pool.map(refresh, [spent, spent]))

            assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
            pairs = [a.json() for a in answers]
            assert pairs[0]["refresh_token"] == pairs[1]["refresh_token"]
            assert pairs[0]["access_token"] != pairs[1]["access_token"]
            row = session_row(db, sid)
            assert row.revoked_at is None
            assert row.previous_jti == jti_of(spent)  # one rotation, from the token presented
            assert row.refresh_jti == jti_of(pairs[0]["refresh_token"])
            assert [me_status(client, pair) for pair in pairs] == [200, 200]
            spent = pairs[0]["refresh_token"]

    assert len(events(db, "auth.refresh_grace_used")) == RACES
    assert events(db, "auth.refresh_reuse_detected") == []
    assert refresh_tokens(client, spent).status_code == 200  # the one chain goes on


def test_grace_replays_hand_out_nothing_but_a_fresh_access_token(
    client: TestClient, user: User, db: Session
) -> None:
    first = login(client, user.email)
    rotated = refresh_tokens(client, first["refresh_token"]).json()

    replays = [refresh_tokens(client, first["refresh_token"]) for _ in range(3)]

    assert [r.status_code for r in replays] == [200] * 3
    assert {r.json()["refresh_token"] for r in replays} == {rotated["refresh_token"]}
    access = {r.json()["access_token"] for r in replays} | {rotated["access_token"]}
    assert len(access) == 4
    assert all(r.headers["cache-control"] == "no-store" for r in replays)
    row = session_row(db, sid_of(first))
    assert row.refresh_jti == jti_of(rotated["refresh_token"])
    grace = events(db, "auth.refresh_grace_used")
    assert len(grace) == 3
    assert {e.subject_id for e in grace} == {e.actor_id for e in grace} == {user.id}
    assert {e.detail["session_id"] for e in grace} == {str(row.id)}
    text = json.dumps([e.detail for e in grace])
    assert first["refresh_token"] not in text and rotated["refresh_token"] not in text
    assert jti_of(first["refresh_token"]) not in text


def test_after_the_grace_the_spent_token_revokes_the_session(
    client: TestClient, user: User, db: Session
) -> None:
    first = login(client, user.email)
    rotated = refresh_tokens(client, first["refresh_token"]).json()
    age_rotation(db, sid_of(first), get_settings().REFRESH_REUSE_GRACE_SECONDS + 1)

    assert_unauthorized(refresh_tokens(client, first["refresh_token"]))

    assert_unauthorized(refresh_tokens(client, rotated["refresh_token"]))
    assert_unauthorized(client.get(api("/users/me"), headers=auth_header(rotated)))
    assert session_row(db, sid_of(first)).revoked_at is not None
    assert len(events(db, "auth.refresh_reuse_detected")) == 1
    assert events(db, "auth.refresh_grace_used") == []


def test_a_token_older_than_the_last_one_spent_revokes_within_the_grace(
    client: TestClient, user: User, db: Session
) -> None:
    """Spent, then its successor spent too: the first is no longer the one just spent."""
    first = login(client, user.email)
    second = refresh_tokens(client, first["refresh_token"]).json()
    third = refresh_tokens(client, second["refresh_token"]).json()

    assert_unauthorized(refresh_tokens(client, first["refresh_token"]))

    assert_unauthorized(refresh_tokens(client, third["refresh_token"]))
    assert len(events(db, "auth.refresh_reuse_detected")) == 1


def test_with_grace_zero_reuse_revokes_at_once(
    client: TestClient, user: User, db: Session, settings: Callable[..., Settings]
) -> None:
    settings(REFRESH_REUSE_GRACE_SECONDS=0)
    first = login(client, user.email)
    rotated = refresh_tokens(client, first["refresh_token"]).json()

    assert_unauthorized(refresh_tokens(client, first["refresh_token"]))

    assert_unauthorized(client.get(api("/users/me"), headers=auth_header(rotated)))
    assert_unauthorized(refresh_tokens(client, rotated["refresh_token"]))
    assert len(events(db, "auth.refresh_reuse_detected")) == 1
    assert events(db, "auth.refresh_grace_used") == []


def test_a_grace_replay_after_logout_is_401(client: TestClient, user: User, db: Session) -> None:
    first = login(client, user.email)
    rotated = refresh_tokens(client, first["refresh_token"]).json()
    assert client.post(api("/auth/logout"), headers=auth_header(rotated)).status_code == 204

    assert_unauthorized(refresh_tokens(client, first["refresh_token"]))
    assert_unauthorized(refresh_tokens(client, rotated["refresh_token"]))
    assert events(db, "auth.refresh_grace_used") == []
