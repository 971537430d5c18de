"""Registration and password login. Hashing is awaited in its own pool; the database steps
run in worker threads and end their transaction before any hashing starts."""

from collections.abc import Callable
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.auth import mfa
from app.auth.lockout import clear as clear_failures
from app.auth.lockout import ensure_not_locked, record_failure
from app.auth.tokens import start_session
from app.core import metrics, ratelimit
from app.core.config import get_settings
from app.core.passwords import hash_password, verify_password
from app.crud import audit, users
from app.crud.audit import Actor
from app.errors import (
    EmailNotVerified,
    EmailTaken,
    InactiveUser,
    InvalidCredentials,
    RegistrationClosed,
)
from app.models.token import MfaChallenge, TokenPair
from app.models.user import User, UserCreate, normalize_email


async def register(session: Session, *, body: UserCreate, actor: Actor) -> User:
    settings = get_settings()
    if not settings.USERS_OPEN_REGISTRATION:
        raise RegistrationClosed()
    await run_in_threadpool(
        ratelimit.hit, "register", settings.RATE_LIMIT_REGISTER, actor.ip or "-"
    )
    if await run_in_threadpool(_email_taken, session, body.email):
        raise EmailTaken()
    hashed = await hash_password(body.password)
    return await run_in_threadpool(
        users.create_user,
        session,
        email=body.email,
        full_name=body.full_name,
        hashed_password=hashed,
        actor=actor,
    )


def _email_taken(session: Session, email: str) -> bool:
    taken = users.email_exists(session, email)
    session.commit()
    return taken


def _find(session: Session, email: str, actor: Actor) -> User | None:
    """Count the attempt against the rate limit, then refuse a locked account at once."""
    ratelimit.hit("login", get_settings().RATE_LIMIT_LOGIN, actor.ip or "-", normalize_email(email))
    user = users.get_user_by_email(session, email)
    session.commit()
    if user is not None:
        ensure_not_locked(user)
    return user


async def login(
    session: Session,
    *,
    email: str,
    password: str,
    actor: Actor,
    start: Callable[..., Any] = start_session,
) -> TokenPair | MfaChallenge:
    """Check a password: an unknown email costs one bcrypt verification, like a wrong password.
    `start(session, user=, actor=)` opens the session (the hosted login page: a browser one)."""
    user = await run_in_threadpool(_find, session, email, actor)
    matches, new_hash = await verify_password(password, user.hashed_password if user else None)
    return await run_in_threadpool(_finish, session, user, matches, new_hash, email, actor, start)


def _finish(
    session: Session,
    user: User | None,
    matches: bool,
    new_hash: str | None,
    email: str,
    actor: Actor,
    start: Callable[..., Any] = start_session,
) -> TokenPair | MfaChallenge:
    if user is None or not matches:
        if user is not None:
            record_failure(session, user, actor=actor)
        audit.record(
            session,
            "auth.login_failed",
            actor=actor,
            subject_id=user.id if user else None,
            **({} if user else {"email": email[:320]}),
        )
        session.commit()
        metrics.LOGINS.labels("failed").inc()
        raise InvalidCredentials()
    session.refresh(user)
    ensure_not_locked(user)
    if not user.is_active:
        raise InactiveUser()
    if get_settings().REQUIRE_EMAIL_VERIFICATION and not user.is_verified:
        raise EmailNotVerified()
    if new_hash:
        user.hashed_password = new_hash
        session.add(user)
    me = Actor(user_id=user.id, ip=actor.ip, user_agent=actor.user_agent)
    if user.mfa_enabled:  # the password was right; the session waits for the second factor
        challenge = mfa.challenge(session, user=user)  # failures are cleared after the code
        session.commit()
        return challenge
    clear_failures(session, user)
    pair = start(session, user=user, actor=me)
    audit.record(session, "auth.login_succeeded", actor=me, subject_id=user.id)
    session.commit()
    metrics.LOGINS.labels("succeeded").inc()
    return pair
