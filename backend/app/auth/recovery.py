"""Password recovery: mail a single-use reset token, then set a new password with it.

The request is answered before the email is even looked up (the lookup, the token and the mail
happen in a background task), so the answer and its timing are the same for every address.
"""

import logging
from datetime import timedelta

from sqlmodel import Session, col

from app.auth import lockout, mails
from app.auth.new_password import new_password_hash
from app.core import mail, ratelimit
from app.core.config import get_settings
from app.core.security import token_digest
from app.crud import action_tokens, audit, users
from app.crud.audit import Actor
from app.db import get_engine, transaction
from app.errors import BadToken
from app.models.action_token import TokenPurpose
from app.models.common import utcnow
from app.models.user import User, normalize_email
from app.steps import run_transaction

RESET = TokenPurpose.RESET_PASSWORD

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
    with Session(get_engine(), expire_on_commit=False) as session:
        issued = transaction(_issue, session, email, actor)
    if issued is not None:  # mailed once the token is committed
        address, token, user_locale = issued
        locale = mails.mail_locale(actor.language, user_locale)
        mail.send(mails.reset_password(address, token, locale=locale))


def _issue(session: Session, email: str, actor: Actor) -> tuple[str, str, str | None] | None:
    """A reset token for `email` if it is a known, active account, audited either way: the
    address, the token to mail and the user's language, or None."""
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
        return None
    token = action_tokens.issue(
        session,
        user_id=user.id,
        email=user.email,
        purpose=RESET,
        expires_at=utcnow() + timedelta(minutes=get_settings().RESET_TOKEN_EXPIRE_MINUTES),
    )
    audit.record(
        session, "auth.password_reset_requested", actor=actor, subject_id=user.id, mailed=True
    )
    return user.email, token, user.locale


async def reset_password(session: Session, *, token: str, new_password: str, actor: Actor) -> None:
    """Set a new password with a live reset token; every session of the user ends."""
    # A bad token costs no hashing; the password is judged against the account's email and name.
    email, full_name = await run_transaction(ensure_live, session, token)
    hashed = await new_password_hash(
        new_password, email=email, full_name=full_name, field="new_password"
    )
    await run_transaction(_apply, session, token, hashed, actor)


def ensure_live(session: Session, token: str) -> tuple[str, str | None]:
    """The email and name of the account a live reset token is for; BadToken otherwise,
    spending nothing (the hosted reset page's GET shows its form only for a live link)."""
    row = action_tokens.find_live(session, digest=token_digest(token), purposes=[RESET])
    user = session.get(User, row.user_id) if row is not None else None
    if user is None:
        raise BadToken()
    return user.email, user.full_name


def _apply(session: Session, token: str, hashed: str, actor: Actor) -> None:
    row = action_tokens.find_live(session, digest=token_digest(token), purposes=[RESET])
    # The user's row first (locked by the update), then the token's: the lock order of every
    # writer. The link acts only while the account is still at the address it was mailed to.
    if (
        row is None
        or row.email is None
        or not users.replace_password(
            session,
            user_id=row.user_id,
            new_hash=hashed,
            where=[col(User.email) == row.email, col(User.is_active).is_(True)],
            is_verified=True,  # the link reached this address
        )
        or not action_tokens.consume(session, row=row)
    ):
        raise BadToken()
    ended = users.end_credentials(session, user_id=row.user_id)
    lockout.clear(session, email=row.email, actor=actor, lift_locks=True)  # never guessed
    me = Actor(user_id=row.user_id, ip=actor.ip, user_agent=actor.user_agent)
    audit.record(session, "auth.password_reset", actor=me, subject_id=row.user_id, sessions=ended)
