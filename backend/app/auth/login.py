"""Registration and password login. Hashing is awaited in its own pool; the database steps
run in worker threads and end their transaction before any hashing starts.

A login completes only if the credentials it checked are still current when it opens its
session (or its MFA challenge): a reset or password change that lands while the hash is being
verified wins, and the login gets nothing (users.claim_credentials)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from app.auth import lockout, mfa
from app.auth.new_password import new_password_hash
from app.auth.tokens import start_session
from app.core import metrics, ratelimit
from app.core.config import get_settings
from app.core.passwords import verify_password
from app.core.security import TokenKind, decode, token_digest
from app.crud import action_tokens, audit, users
from app.crud.audit import Actor
from app.db import Remembered
from app.errors import (
    EmailNotVerified,
    EmailTaken,
    InactiveUser,
    InvalidCredentials,
    InvalidToken,
    MfaFailed,
    RegistrationClosed,
)
from app.models.action_token import MFA_CHALLENGES
from app.models.user import User, UserCreate, is_address, normalize_email
from app.steps import run_step, run_transaction


async def register(session: Session, *, body: UserCreate, actor: Actor) -> User:
    settings = get_settings()
    if not settings.USERS_OPEN_REGISTRATION:
        raise RegistrationClosed()
    await run_step(ratelimit.hit, "register", settings.RATE_LIMIT_REGISTER, actor.ip or "-")
    if await run_transaction(users.email_exists, session, body.email):
        raise EmailTaken()
    hashed = await new_password_hash(body.password, email=body.email, full_name=body.full_name)
    return await run_transaction(
        users.create_user,
        session,
        email=body.email,
        full_name=body.full_name,
        hashed_password=hashed,
        actor=actor,
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    """A login attempt between its look-up and its end: what the password was checked against."""

    email: str
    actor: Actor
    user: User | None
    checked_hash: str | None
    version: int | None


def _find(session: Session, email: str, actor: Actor) -> Attempt:
    """Count the attempt against the address's and the (address, email) budgets, refuse a
    locked one at once (known email or not), then look the account up."""
    settings = get_settings()
    address = actor.ip or "-"
    ratelimit.hit("login_ip", settings.RATE_LIMIT_LOGIN_IP, address)
    ratelimit.hit("login", settings.RATE_LIMIT_LOGIN, address, normalize_email(email))
    lockout.ensure_not_locked(session, email=email, actor=actor)
    user = users.get_user_by_email(session, email)
    if user is None:
        return Attempt(email, actor, None, None, None)
    return Attempt(email, actor, user, user.hashed_password, user.credentials_version)


# Opens the session of a completed login: the service's own token pair (start_session), or
# the hosted login page's browser session (web/sessions.py).
Start = Callable[..., Any]
# What opens the session of a login given its RFC 8176 methods (amr): the hosted login
# page's browser session (web/sessions.opener); without one, the API's token pair.
Opener = Callable[[tuple[str, ...]], Start]


async def login(
    session: Session, *, email: str, password: str, actor: Actor, start: Start = start_session
) -> Any:
    """Check a password: an unknown email costs one bcrypt verification, like a wrong password.
    What `start(session, user=, actor=)` opens, or an MfaChallenge for a user with TOTP."""
    attempt = await run_transaction(_find, session, email, actor)
    matches, new_hash = await verify_password(password, attempt.checked_hash)
    if not matches:
        await run_transaction(failed, session, attempt)
        raise InvalidCredentials()
    return await run_transaction(_finish, session, attempt, new_hash, start)


def refused(attempt: Attempt, error: Exception | None = None, **detail: object) -> Remembered:
    """A refusal of `attempt` (401, or `error`) that is counted and audited (`failed`)."""
    return Remembered(
        error or InvalidCredentials(), lambda session: failed(session, attempt, **detail)
    )


def failed(session: Session, attempt: Attempt, **detail: object) -> None:
    """A wrong password (or code): count it toward the lockout and audit it. The attempted
    email is kept only when it is an address: people paste passwords there."""
    user = attempt.user
    lockout.record_failure(
        session, email=attempt.email, actor=attempt.actor, subject_id=user.id if user else None
    )
    unknown = {"email": attempt.email[:320]} if user is None and is_address(attempt.email) else {}
    audit.record(
        session,
        "auth.login_failed",
        actor=attempt.actor,
        subject_id=user.id if user else None,
        **unknown,
        **detail,
    )
    metrics.LOGINS.labels("failed").inc()


def _finish(session: Session, attempt: Attempt, new_hash: str | None, start: Start) -> Any:
    user = attempt.user
    assert user is not None and attempt.version is not None and attempt.checked_hash is not None
    if not users.claim_credentials(session, user_id=user.id, version=attempt.version):
        raise refused(attempt, reason="credentials_changed")  # changed while being checked
    session.refresh(user)
    lockout.ensure_not_locked(session, email=attempt.email, actor=attempt.actor)
    ensure_may_log_in(user)
    if new_hash:
        users.upgrade_hash(
            session, user_id=user.id, verified=attempt.checked_hash, new_hash=new_hash
        )
    if user.mfa_enabled:  # the password was right; the session waits for the second factor
        return mfa.challenge(session, user=user, version=attempt.version)  # failures stay
    return complete(session, user=user, email=attempt.email, actor=attempt.actor, start=start)


def ensure_may_log_in(user: User) -> None:
    """After the right credentials: refuse an inactive user, or an unverified one if required."""
    if not user.is_active:
        raise InactiveUser()
    if get_settings().REQUIRE_EMAIL_VERIFICATION and not user.is_verified:
        raise EmailNotVerified()


def login_mfa(
    session: Session, *, mfa_token: str, code: str, actor: Actor, opener: Opener | None = None
) -> Any:
    """The second step of a login: an mfa_token and a TOTP or recovery code -> a session, if
    the credentials its first factor was checked under are still current. The session's amr
    names that first factor (the challenge's purpose) and `otp`."""
    claims = decode(mfa_token, TokenKind.MFA)
    digest = token_digest(claims.jti)
    row = action_tokens.find_live(session, digest=digest, purposes=MFA_CHALLENGES)
    if (
        row is None
        or row.user_id != claims.sub
        or row.credentials_version is None
        # the user's row first, then the challenge's: one lock order with every writer
        or not users.claim_credentials(
            session, user_id=row.user_id, version=row.credentials_version
        )
        or not action_tokens.count_attempt(
            session,
            digest=digest,
            user_id=claims.sub,
            purpose=row.purpose,
            max_attempts=mfa.MAX_MFA_ATTEMPTS,
        )
    ):
        raise InvalidToken()
    user = session.get(User, claims.sub, populate_existing=True)
    if user is None or not user.is_active or not user.mfa_enabled:
        raise InvalidToken()
    attempt = Attempt(user.email, actor, user, user.hashed_password, row.credentials_version)
    lockout.ensure_not_locked(session, email=user.email, actor=actor)
    method = mfa.check_code(session, user, code)
    if method is None:  # a wrong code uses up the challenge and counts toward the lockout
        purpose = row.purpose

        def wrong_code(session: Session) -> None:
            action_tokens.count_attempt(
                session,
                digest=digest,
                user_id=claims.sub,
                purpose=purpose,
                max_attempts=mfa.MAX_MFA_ATTEMPTS,
            )
            failed(session, attempt, step="mfa")

        raise Remembered(MfaFailed(), wrong_code)
    action_tokens.mark_used(session, digest=digest)
    start = opener((MFA_CHALLENGES[row.purpose], "otp")) if opener else start_session
    return complete(session, user=user, email=user.email, actor=actor, start=start, mfa=method)


def complete(
    session: Session,
    *,
    user: User,
    email: str,
    actor: Actor,
    start: Start = start_session,
    event: str = "auth.login_succeeded",
    **detail: object,
) -> Any:
    """The end of a login whose credentials were checked: forget the failures, open the
    session (what `start` opens), audit."""
    me = Actor(user_id=user.id, ip=actor.ip, user_agent=actor.user_agent)
    lockout.clear(session, email=email, actor=actor)
    pair = start(session, user=user, actor=me)
    audit.record(session, event, actor=me, subject_id=user.id, **detail)
    metrics.LOGINS.labels("succeeded").inc()
    return pair
