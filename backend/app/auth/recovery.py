"""Password recovery: mail a single-use reset token, then set a new password with it.

The request is answered before the email is even looked up (the lookup, the token and the mail
happen in a background task), so the answer and its timing are the same for every address.
"""

import logging
from datetime import timedelta

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.auth import lockout, mails
from app.core import mail, ratelimit
from app.core.config import get_settings
from app.core.passwords import hash_password
from app.crud import action_tokens, audit, sessions, users
from app.crud.audit import Actor
from app.db import get_engine
from app.errors import BadToken
from app.models.action_token import TokenPurpose
from app.models.common import utcnow
from app.models.user import User, normalize_email

logger = logging.getLogger(__name__)


def check_rate(email: str, actor: Actor) -> None:
    """Count a recovery request against the client's budget over all emails, then against
    this email's; 429 past either, known address or not (both are counted before any lookup).
    The per-address budget stops one client from mailing many addresses."""
    settings = get_settings()
    ratelimit.hit("password_recovery_ip", settings.RATE_LIMIT_PASSWORD_RECOVERY_IP, actor.ip or "-")
    ratelimit.hit("password_recovery", settings.RATE_LIMIT_PASSWORD_RECOVERY, email)


def request_recovery(email: str, actor: Actor) -> None:
    """Background task: issue and mail a reset token if `email` is a known, active account."""
    try:
        _request_recovery(normalize_email(email), actor)
    except Exception as error:  # after the response: log, never raise into the server
        logger.error("password recovery request failed: %s", type(error).__name__)


def _request_recovery(email: str, actor: Actor) -> None:
    settings = get_settings()
    with Session(get_engine(), expire_on_commit=False) as session:
        user = users.get_user_by_email(session, email)
        if user is None or not user.is_active:
            audit.record(
                session,
                "auth.password_reset_requested",
                actor=actor,
                subject_id=user.id if user else None,
                mailed=False,
                **({} if user else {"email": email[:320]}),
            )
            session.commit()
            return
        token = action_tokens.issue(
            session,
            user_id=user.id,
            purpose=TokenPurpose.RESET_PASSWORD,
            expires_at=utcnow() + timedelta(minutes=settings.RESET_TOKEN_EXPIRE_MINUTES),
        )
        audit.record(
            session, "auth.password_reset_requested", actor=actor, subject_id=user.id, mailed=True
        )
        session.commit()
    mail.send(mails.reset_password(user.email, token))


async def reset_password(session: Session, *, token: str, new_password: str, actor: Actor) -> None:
    """Set a new password with a live reset token; every session of the user ends."""
    await run_in_threadpool(_ensure_live, session, token)  # a bad token costs no hashing
    hashed = await hash_password(new_password)
    await run_in_threadpool(_apply, session, token, hashed, actor)


def _ensure_live(session: Session, token: str) -> None:
    row = action_tokens.find_live(session, token=token, purpose=TokenPurpose.RESET_PASSWORD)
    session.commit()
    if row is None:
        raise BadToken()


def _apply(session: Session, token: str, hashed: str, actor: Actor) -> None:
    row = action_tokens.consume(session, token=token, purpose=TokenPurpose.RESET_PASSWORD)
    user = session.get(User, row.user_id, populate_existing=True) if row else None
    if user is None or not user.is_active:
        session.rollback()
        raise BadToken()
    user.hashed_password = hashed
    user.is_verified = True  # the token reached this address (an email change spends it)
    user.updated_at = utcnow()
    session.add(user)
    lockout.clear(session, user)  # the new password was never guessed
    ended = sessions.revoke_all(session, user.id)
    action_tokens.spend_all(session, user_id=user.id, purposes=[TokenPurpose.RESET_PASSWORD])
    me = Actor(user_id=user.id, ip=actor.ip, user_agent=actor.user_agent)
    audit.record(session, "auth.password_reset", actor=me, subject_id=user.id, sessions=ended)
    session.commit()
