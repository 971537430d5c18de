"""The retention janitor: each rule purges what stopped mattering and keeps what still
decides something (a spent refresh token's session, a lock in force, recent audit events)."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.core.config import Settings
from app.jobs import janitor
from app.jobs.retention_rules import RULES
from app.models.audit import AuditEvent
from app.models.client import ClientToken
from app.models.common import utcnow
from app.models.session import AuthSession
from app.models.user import User
from tests.test_refresh_grace import age_rotation, events, session_row, sid_of
from tests.utils import api, assert_unauthorized, auth_header, login, refresh_tokens
from tests.utils.retention import DAY, PAIRS, audit_event, client_token, count, ensure_client
from tests.utils.retention import session_row as new_session


def test_every_rule_has_a_pair_of_rows_here() -> None:
    assert {rule.table for rule in RULES} == set(PAIRS)


@pytest.mark.parametrize("table", sorted(PAIRS))
def test_a_rule_purges_the_stale_row_and_keeps_the_live_one(
    table: str, db: Session, user: User
) -> None:
    ensure_client(db)
    now = utcnow()
    stale, live = PAIRS[table](db, user, now)
    db.add_all([stale, live])
    db.commit()
    stale_key, live_key = (row.__mapper__.primary_key_from_instance(row) for row in (stale, live))  # type: ignore[attr-defined]
    model = type(stale)

    done = janitor.purge(now=now)

    assert done.ran and done.counts[table] == 1
    assert db.get(model, tuple(stale_key), populate_existing=True) is None
    assert db.get(model, tuple(live_key), populate_existing=True) is not None
    db.commit()


def test_sessions_go_30_days_after_they_expired_or_were_revoked(db: Session, user: User) -> None:
    now = utcnow()
    rows = {
        "expired 31 days ago": new_session(user, expires=now - 31 * DAY),
        "expired 29 days ago": new_session(user, expires=now - 29 * DAY),
        "revoked 31 days ago": new_session(user, expires=now - 24 * DAY, revoked=now - 31 * DAY),
        "revoked 29 days ago": new_session(user, expires=now + DAY, revoked=now - 29 * DAY),
        "live": new_session(user, expires=now + 7 * DAY),
    }
    db.add_all(rows.values())
    db.commit()

    janitor.purge(now=now)

    left = {
        name for name, row in rows.items() if db.get(AuthSession, row.id, populate_existing=True)
    }
    assert left == {"expired 29 days ago", "revoked 29 days ago", "live"}


def test_a_spent_refresh_token_is_still_reuse_after_a_janitor_pass(
    client: TestClient, db: Session, user: User
) -> None:
    first = login(client, user.email)
    second = refresh_tokens(client, first["refresh_token"]).json()
    sid = sid_of(first)
    age_rotation(db, sid, 60)  # past the grace: the spent token is reuse
    janitor.purge(now=utcnow() + 29 * DAY)  # a month on, short of the retention window

    assert_unauthorized(refresh_tokens(client, first["refresh_token"]))

    assert session_row(db, sid).revoked_at is not None
    assert len(events(db, "auth.refresh_reuse_detected")) == 1
    assert_unauthorized(refresh_tokens(client, second["refresh_token"]))


def test_a_revoked_session_inside_the_window_still_refuses_its_tokens(
    client: TestClient, db: Session, user: User
) -> None:
    tokens = login(client, user.email)
    assert client.post(api("/auth/logout"), headers=auth_header(tokens)).status_code == 204
    janitor.purge(now=utcnow() + 6 * DAY)

    assert db.get(AuthSession, sid_of(tokens), populate_existing=True) is not None
    assert_unauthorized(refresh_tokens(client, tokens["refresh_token"]))


def test_audit_retention_0_keeps_every_event(
    db: Session, settings: Callable[..., Settings]
) -> None:
    now = utcnow()
    db.add_all([audit_event(now - 3650 * DAY), audit_event(now - 400 * DAY)])
    db.commit()
    before = count(db, AuditEvent)

    done = janitor.purge(now=now, settings=settings(AUDIT_RETENTION_DAYS=0))

    assert done.counts["audit_event"] == 0
    assert count(db, AuditEvent) == before


def test_audit_retention_days_sets_the_cut(db: Session, settings: Callable[..., Settings]) -> None:
    now = utcnow()
    old, recent = audit_event(now - 31 * DAY), audit_event(now - 29 * DAY)
    db.add_all([old, recent])
    db.commit()

    janitor.purge(now=now, settings=settings(AUDIT_RETENTION_DAYS=30))

    assert db.get(AuditEvent, old.id, populate_existing=True) is None
    assert db.get(AuditEvent, recent.id, populate_existing=True) is not None


def test_more_rows_than_a_batch_are_all_purged_in_batches(db: Session) -> None:
    ensure_client(db)
    now = utcnow()
    db.add_all([client_token(now - timedelta(minutes=1)) for _ in range(23)])
    db.add_all([client_token(now + timedelta(minutes=5)) for _ in range(3)])
    db.commit()

    done = janitor.purge(now=now, batch_size=5)

    assert done.counts["oauth_client_token"] == 23
    assert count(db, ClientToken) == 3


def test_a_dry_run_counts_and_deletes_nothing(db: Session) -> None:
    ensure_client(db)
    now = utcnow()
    db.add_all([client_token(now - timedelta(minutes=1)) for _ in range(4)])
    db.commit()

    assert janitor.purge(now=now, dry_run=True).counts["oauth_client_token"] == 4
    assert count(db, ClientToken) == 4
    remaining = db.exec(select(ClientToken)).all()
    assert len(remaining) == 4
