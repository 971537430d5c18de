"""The caller's own password asked again before a sensitive change (password, email, TOTP).

Such a check is what stands between a stolen access token and a takeover, so it is rate
limited per user, refused while the account is locked out for the caller's address, and a
wrong answer counts toward the lockout like a failed login."""

from sqlmodel import Session

from app.auth import lockout
from app.core import ratelimit
from app.core.config import get_settings
from app.core.passwords import verify_password
from app.crud import audit
from app.crud.audit import Actor
from app.errors import IncorrectPassword
from app.models.user import User
from app.steps import run_transaction


async def confirm_password(session: Session, *, user: User, password: str, actor: Actor) -> int:
    """Check the caller's password (hashed in the pool, no transaction open); the credentials
    version it was checked under, for a compare-and-swap by the change that follows."""
    checked, version = user.hashed_password, user.credentials_version
    await run_transaction(_before_check, session, user, actor)
    matches, _ = await verify_password(password, checked)
    if not matches:
        await run_transaction(count_wrong_secret, session, user=user, actor=actor)
        raise IncorrectPassword()
    return version


def _before_check(session: Session, user: User, actor: Actor) -> None:
    ratelimit.hit("password_check", get_settings().RATE_LIMIT_LOGIN, str(user.id))
    lockout.ensure_not_locked(session, email=user.email, actor=actor)


def count_wrong_secret(
    session: Session, *, user: User, actor: Actor, what: str = "password"
) -> None:
    """A wrong password or code asked again: it counts toward the lockout, audited."""
    lockout.record_failure(session, email=user.email, actor=actor, subject_id=user.id)
    audit.record(
        session, "auth.reauthentication_failed", actor=actor, subject_id=user.id, what=what
    )
