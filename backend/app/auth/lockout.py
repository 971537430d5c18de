"""Account lockout after MAX_FAILED_LOGINS consecutive wrong passwords.

The count lives on the user row, so every worker and host sees the same state; it is
changed with single UPDATE statements, so concurrent failures are all counted.
"""

import math
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col

from app.core import metrics
from app.core.config import get_settings
from app.crud import audit
from app.crud.audit import Actor
from app.errors import AccountLocked
from app.models.common import utcnow
from app.models.user import User


def ensure_not_locked(user: User) -> None:
    if user.locked_until is not None:
        remaining = (user.locked_until - utcnow()).total_seconds()
        if remaining > 0:
            raise AccountLocked(retry_after=max(1, math.ceil(remaining)))


def record_failure(session: Session, user: User, *, actor: Actor) -> None:
    """Count a wrong password; the MAX_FAILED_LOGINS-th locks the account. The caller commits."""
    settings = get_settings()
    failures = session.exec(
        update(User)
        .where(col(User.id) == user.id)
        .values(failed_logins=col(User.failed_logins) + 1)
        .returning(col(User.failed_logins))
    ).scalar_one()
    if failures < settings.MAX_FAILED_LOGINS:
        return
    locked_until = utcnow() + timedelta(minutes=settings.LOCKOUT_MINUTES)
    session.exec(
        update(User)
        .where(col(User.id) == user.id)
        .values(failed_logins=0, locked_until=locked_until)
    )
    audit.record(
        session,
        "auth.locked_out",
        actor=actor,
        subject_id=user.id,
        minutes=settings.LOCKOUT_MINUTES,
    )
    metrics.LOCKOUTS.inc()


def clear(session: Session, user: User) -> None:
    """Forget past failures (after a good password, or an unlock). The caller commits."""
    if user.failed_logins or user.locked_until is not None:
        session.exec(
            update(User).where(col(User.id) == user.id).values(failed_logins=0, locked_until=None)
        )


def unlock(session: Session, *, user: User, actor: Actor) -> None:
    clear(session, user)
    audit.record(session, "user.unlocked", actor=actor, subject_id=user.id)
    session.commit()
