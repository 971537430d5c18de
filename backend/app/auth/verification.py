"""Email verification and email changes.

Every mailed link is bound to the address it was sent to: a verification link marks that
address verified only while the account is still at it, and a change link moves the account
only to the pending address it was mailed to. A user changing their own address gives their
password; the account stays at the old address, told of the request, until the link mailed
to the new one is followed (so a stolen access token cannot move the account to an
attacker's mailbox)."""

from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.auth import mails
from app.auth.credentials import confirm_password
from app.core import mail, ratelimit
from app.core.config import get_settings
from app.core.security import token_digest
from app.crud import action_tokens, audit, users
from app.crud.audit import Actor
from app.errors import BadToken, EmailTaken, IncorrectPassword
from app.models.action_token import TokenPurpose
from app.models.common import utcnow
from app.models.user import User
from app.steps import run_step, run_transaction

VERIFY, CHANGE = TokenPurpose.VERIFY_EMAIL, TokenPurpose.CHANGE_EMAIL


async def request_verification(
    session: Session, *, user: User, language: str | None = None
) -> bool:
    """On the user's request: limited like recovery mails (RATE_LIMIT_PASSWORD_RECOVERY)."""
    limit = get_settings().RATE_LIMIT_PASSWORD_RECOVERY
    await run_step(ratelimit.hit, "verification", limit, str(user.id))
    return await send_verification(session, user=user, language=language)


def _issue(session: Session, *, user: User, purpose: TokenPurpose, email: str) -> str:
    """A new link of `purpose` bound to `email`; older ones of that purpose stop working."""
    action_tokens.spend_all(session, user_id=user.id, purposes=[purpose])
    return action_tokens.issue(
        session,
        user_id=user.id,
        purpose=purpose,
        email=email,
        expires_at=utcnow() + timedelta(hours=get_settings().VERIFY_TOKEN_EXPIRE_HOURS),
    )


async def send_verification(session: Session, *, user: User, language: str | None = None) -> bool:
    """Mail a new verification link to the account's address (once it is committed), in
    `language` (the request's: `Actor.language`) or the user's own; False if already
    verified."""
    if user.is_verified:
        return False
    token = await run_transaction(_issue, session, user=user, purpose=VERIFY, email=user.email)
    locale = mails.mail_locale(language, user.locale)
    mail.send(mails.verify_email(user.email, token, locale=locale))
    return True


async def request_change(
    session: Session, *, user: User, new_email: str, password: str | None, actor: Actor
) -> User:
    """The owner asks to move the account to `new_email`: rate limited per user, with the
    current password; the link goes to the new address and a notice to the old one."""
    await run_step(
        ratelimit.hit, "email_change", get_settings().RATE_LIMIT_EMAIL_CHANGE, str(user.id)
    )
    if not password:
        raise IncorrectPassword()
    version = await confirm_password(session, user=user, password=password, actor=actor)
    token = await run_transaction(_record_change, session, user, new_email, version, actor)
    assert user.pending_email is not None  # mailed once the change is committed
    locale = mails.mail_locale(actor.language, user.locale)
    mail.send(mails.change_email(user.pending_email, token, locale=locale))
    mail.send(mails.email_change_notice(user.email, user.pending_email, locale=locale))
    return user


def _record_change(session: Session, user: User, new_email: str, version: int, actor: Actor) -> str:
    """The change pending, audited; the token of the link to mail to the new address."""
    if users.email_exists(session, new_email):
        raise EmailTaken()
    if not users.request_email(session, user_id=user.id, email=new_email, version=version):
        raise IncorrectPassword()  # the password changed since it was checked
    session.refresh(user)
    assert user.pending_email is not None
    token = _issue(session, user=user, purpose=CHANGE, email=user.pending_email)
    audit.record(session, "user.email_change_requested", actor=actor, subject_id=user.id)
    return token


async def email_set_by_admin(session: Session, *, user: User, old_email: str) -> None:
    """After an admin moved an account to another address: tell the old address, and mail
    the new one a verification link (in the user's language, not the admin's)."""
    if user.email == old_email:
        return
    locale = mails.mail_locale(user.locale)
    mail.send(mails.email_change_notice(old_email, user.email, done=True, locale=locale))
    await send_verification(session, user=user)


def mailed_address(session: Session, *, token: str) -> str:
    """The address a live verification or change link was mailed to, spending nothing (the
    hosted page's GET asks to confirm first: mail scanners open links); else BadToken."""
    row = action_tokens.find_live(session, digest=token_digest(token), purposes=[VERIFY, CHANGE])
    if row is None or row.email is None:
        raise BadToken()
    return row.email


def verify_email(session: Session, *, token: str, actor: Actor) -> User:
    """Follow a verification or change link: the address it was mailed to becomes the
    account's verified address, if the account is (or is moving to) that address still."""
    row = action_tokens.find_live(session, digest=token_digest(token), purposes=[VERIFY, CHANGE])
    if row is None or row.email is None:
        raise BadToken()
    try:
        # The user's row first (locked by the update), then the token's: one lock order.
        confirmed = users.confirm_email(
            session, user_id=row.user_id, email=row.email, pending=row.purpose is CHANGE
        )
        if not confirmed or not action_tokens.consume(session, row=row):
            raise BadToken()
        session.flush()
    except IntegrityError:  # another account took the address meanwhile
        raise EmailTaken() from None
    me = Actor(user_id=row.user_id, ip=actor.ip, user_agent=actor.user_agent)
    event = "user.email_changed" if row.purpose is CHANGE else "user.email_verified"
    audit.record(session, event, actor=me, subject_id=row.user_id)
    user = session.get(User, row.user_id, populate_existing=True)
    assert user is not None
    return user
