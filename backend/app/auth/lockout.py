"""Lockout after failed logins, per account *and* source address (API.md, Abuse resistance).

MAX_FAILED_LOGINS consecutive failures from one address lock that address out of the
account for LOCKOUT_MINUTES; ACCOUNT_LOCKOUT_THRESHOLD failures from all addresses together
lock the account for everyone. So an attacker elsewhere cannot keep the owner out with a few
wrong passwords, and a spray from many addresses still stops. Counters are rows keyed by the
digest of the normalised email, known or not: an unknown email is counted, locked and
answered exactly like a real one. Each count is one upsert, so concurrent failures all count
and every worker and host sees the same state.
"""

import math
import uuid
from datetime import datetime, timedelta

from sqlalchemy import case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from app.core import metrics
from app.core.config import get_settings
from app.core.security import token_digest
from app.crud import audit
from app.crud.audit import Actor
from app.errors import AccountLocked
from app.models.common import utcnow
from app.models.lockout import ALL_ADDRESSES, LoginFailure
from app.models.user import normalize_email

# Failures older than this are forgotten (as Keycloak's failure reset time): a typo today does
# not add to a few from last month.
FAILURES_FORGOTTEN_AFTER = timedelta(hours=12)


def _account(email: str) -> str:
    return token_digest(normalize_email(email))


def _address(actor: Actor) -> str:
    return (actor.ip or "-")[:64]


def ensure_not_locked(session: Session, *, email: str, actor: Actor) -> None:
    """429 with Retry-After while this address is locked out of the account, or the account
    is locked for everyone."""
    now = utcnow()
    until = session.exec(
        select(LoginFailure.locked_until).where(
            col(LoginFailure.account) == _account(email),
            col(LoginFailure.address).in_([_address(actor), ALL_ADDRESSES]),
            col(LoginFailure.locked_until) > now,
        )
    ).all()
    latest = max((t for t in until if t is not None), default=None)
    if latest is not None:
        raise AccountLocked(retry_after=max(1, math.ceil((latest - now).total_seconds())))


def record_failure(
    session: Session, *, email: str, actor: Actor, subject_id: uuid.UUID | None
) -> None:
    """Count a failed login (or a wrong password or code asked again later) for the account
    from this address, and for the account as a whole. The caller commits."""
    settings = get_settings()
    account, now = _account(email), utcnow()
    # Always the address row first, then the account row: one lock order for every writer.
    for address, threshold, scope in (
        (_address(actor), settings.MAX_FAILED_LOGINS, "address"),
        (ALL_ADDRESSES, settings.ACCOUNT_LOCKOUT_THRESHOLD, "account"),
    ):
        if _count(session, account, address, now) < threshold:
            continue
        session.exec(
            update(LoginFailure)
            .where(col(LoginFailure.account) == account, col(LoginFailure.address) == address)
            .values(failures=0, locked_until=now + timedelta(minutes=settings.LOCKOUT_MINUTES))
        )
        audit.record(
            session,
            "auth.locked_out",
            actor=actor,
            subject_id=subject_id,
            scope=scope,
            minutes=settings.LOCKOUT_MINUTES,
        )
        metrics.LOCKOUTS.inc()


def _count(session: Session, account: str, address: str, now: datetime) -> int:
    """Add one failure to a counter (created at 1), atomically; its new count."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = LoginFailure.__table__  # type: ignore[attr-defined]
    stale = table.c.updated_at < now - FAILURES_FORGOTTEN_AFTER
    values = insert(table).values(account=account, address=address, failures=1, updated_at=now)
    statement = values.on_conflict_do_update(
        index_elements=[table.c.account, table.c.address],
        set_={
            "failures": case((stale, 1), else_=table.c.failures + 1),
            "updated_at": now,
        },
    ).returning(table.c.failures)
    return int(session.execute(statement).scalar_one())


def clear(session: Session, *, email: str, actor: Actor, lift_locks: bool = False) -> None:
    """After a completed login: forget this address's failures and the account's count, and
    with `lift_locks` (after a password reset: the new password was never guessed) their
    running locks too; other addresses stay locked out. The caller commits."""
    account, now = _account(email), utcnow()
    for address in (_address(actor), ALL_ADDRESSES):
        conditions = [col(LoginFailure.account) == account, col(LoginFailure.address) == address]
        if not lift_locks:
            conditions.append(
                col(LoginFailure.locked_until).is_(None) | (col(LoginFailure.locked_until) <= now)
            )
        session.exec(delete(LoginFailure).where(*conditions))


def unlock(session: Session, *, email: str, subject_id: uuid.UUID, actor: Actor) -> None:
    """Lift every lock and count of the account, from all addresses (admin, `manage unlock`)."""
    session.exec(delete(LoginFailure).where(col(LoginFailure.account) == _account(email)))
    audit.record(session, "user.unlocked", actor=actor, subject_id=subject_id)
