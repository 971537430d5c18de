"""Email verification: a single-use token mailed at registration, on request, and after an
email change; using it marks the address verified."""

from datetime import timedelta

from sqlmodel import Session

from app.auth import mails
from app.core import mail, ratelimit
from app.core.config import get_settings
from app.crud import action_tokens, audit
from app.crud.audit import Actor
from app.errors import BadToken
from app.models.action_token import TokenPurpose
from app.models.common import utcnow
from app.models.user import User


def request_verification(session: Session, *, user: User) -> bool:
    """On the user's request: limited like recovery mails (RATE_LIMIT_PASSWORD_RECOVERY)."""
    ratelimit.hit("verification", get_settings().RATE_LIMIT_PASSWORD_RECOVERY, str(user.id))
    return send_verification(session, user=user)


def send_verification(session: Session, *, user: User) -> bool:
    """Mail a new verification token (older ones stop working); False if already verified."""
    if user.is_verified:
        return False
    action_tokens.spend_all(session, user_id=user.id, purposes=[TokenPurpose.VERIFY_EMAIL])
    token = action_tokens.issue(
        session,
        user_id=user.id,
        purpose=TokenPurpose.VERIFY_EMAIL,
        expires_at=utcnow() + timedelta(hours=get_settings().VERIFY_TOKEN_EXPIRE_HOURS),
    )
    session.commit()
    mail.send(mails.verify_email(user.email, token))
    return True


def email_changed(session: Session, *, user: User, old_email: str) -> None:
    """After an email change (which left the address unverified): mail the new address."""
    if user.email != old_email:
        send_verification(session, user=user)


def verify_email(session: Session, *, token: str, actor: Actor) -> User:
    row = action_tokens.consume(session, token=token, purpose=TokenPurpose.VERIFY_EMAIL)
    user = session.get(User, row.user_id, populate_existing=True) if row else None
    if user is None:
        session.rollback()
        raise BadToken()
    user.is_verified = True
    user.updated_at = utcnow()
    session.add(user)
    me = Actor(user_id=user.id, ip=actor.ip, user_agent=actor.user_agent)
    audit.record(session, "user.email_verified", actor=me, subject_id=user.id)
    session.commit()
    return user
