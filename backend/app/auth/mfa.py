"""TOTP (RFC 6238) as a second factor: set-up, confirmation with recovery codes, the second
step of a login, and turning it off.

Codes are 6 digits every 30 s (what every authenticator app speaks); the step before and the
step after the current one are accepted for clock drift, and a step, once used, is never
accepted again for that user. The secret is encrypted at rest (core/crypto.py).
"""

import logging
import secrets
import uuid
from dataclasses import dataclass

import pyotp
from sqlmodel import Session

from app.auth.credentials import confirm_password, count_wrong_secret
from app.core import crypto
from app.core.config import get_settings
from app.core.i18n import N_
from app.core.security import (
    TokenType,
    constant_time_equals,
    create_token,
    mfa_expiry,
    new_jti,
    token_digest,
)
from app.crud import action_tokens, audit
from app.crud import mfa as mfa_crud
from app.crud.audit import Actor
from app.db import Remembered
from app.errors import (
    Conflict,
    InvalidCode,
    InvalidToken,
    MfaAlreadyEnabled,
    MfaNotStarted,
)
from app.models.action_token import TokenPurpose
from app.models.common import utcnow
from app.models.token import MfaChallenge
from app.models.user import User
from app.steps import run_transaction

logger = logging.getLogger(__name__)

RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_BYTES = 10  # 80 bits each: enough that a SHA-256 digest cannot be brute-forced
MAX_MFA_ATTEMPTS = 5  # codes tried with one mfa_token before it stops working
DRIFT_STEPS = 1


@dataclass(frozen=True, slots=True)
class TotpSetup:
    secret: str
    otpauth_uri: str


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret)


def _normalize(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def recovery_digest(code: str) -> str:
    return token_digest(_normalize(code))


def new_recovery_codes() -> list[str]:
    """Ten codes shown once, like `1f2e3-d4c5b-6a798-07f6e`."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(RECOVERY_CODE_BYTES)
        codes.append("-".join(raw[i : i + 5] for i in range(0, len(raw), 5)))
    return codes


def matching_step(secret: str, code: str) -> int | None:
    """The time step whose code is `code`, within the allowed drift; None if there is none."""
    code = _normalize(code)
    if len(code) != 6 or not code.isdigit():
        return None
    totp = _totp(secret)
    now = totp.timecode(utcnow())
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if constant_time_equals(totp.generate_otp(step), code):
            found = step
    return found


def _secret_of(user: User) -> str | None:
    if user.mfa_secret is None:
        return None
    secret = crypto.decrypt(user.mfa_secret)
    if secret is None:
        logger.error("TOTP secret of user %s cannot be decrypted (SECRET_KEY changed?)", user.id)
    return secret


async def begin_setup(session: Session, *, user: User, password: str, actor: Actor) -> TotpSetup:
    """Start a set-up after the caller's password: a stolen access token alone cannot enrol
    a second factor and lock the owner out."""
    await confirm_password(session, user=user, password=password, actor=actor)
    return await run_transaction(start_setup, session, user=user)


def start_setup(session: Session, *, user: User) -> TotpSetup:
    """A new secret, kept but not active until a code from it is confirmed."""
    if user.mfa_enabled:
        raise MfaAlreadyEnabled()
    secret = pyotp.random_base32()
    encrypted = crypto.encrypt(secret)
    if not mfa_crud.set_pending_secret(session, user_id=user.id, encrypted_secret=encrypted):
        raise MfaAlreadyEnabled()
    uri = _totp(secret).provisioning_uri(name=user.email, issuer_name=get_settings().PROJECT_NAME)
    return TotpSetup(secret=secret, otpauth_uri=uri)


def confirm_setup(session: Session, *, user_id: uuid.UUID, code: str, actor: Actor) -> list[str]:
    """Activate TOTP with a code from the new secret; return the recovery codes (shown once)."""
    user = session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None:
        raise InvalidToken()
    if user.mfa_enabled:
        raise MfaAlreadyEnabled()
    encrypted, secret = user.mfa_secret, _secret_of(user)
    if encrypted is None or secret is None:
        raise MfaNotStarted()
    step = matching_step(secret, code)
    if step is None or not mfa_crud.claim_step(session, user_id=user.id, step=step):
        raise InvalidCode()
    codes = new_recovery_codes()
    digests = [recovery_digest(c) for c in codes]
    if not mfa_crud.enable(
        session, user_id=user.id, encrypted_secret=encrypted, code_digests=digests
    ):
        raise Conflict(N_("TOTP set-up changed meanwhile: start again"))
    audit.record(session, "mfa.enabled", actor=actor, subject_id=user.id, method="totp")
    return codes


def reset(session: Session, *, user: User, actor: Actor) -> bool:
    """Turn TOTP off (the owner, or an admin for a lost device); True if it was on."""
    was_enabled = mfa_crud.disable(session, user_id=user.id)
    if was_enabled:
        audit.record(session, "mfa.disabled", actor=actor, subject_id=user.id)
    return was_enabled


async def disable(session: Session, *, user: User, password: str, code: str, actor: Actor) -> None:
    """Turn TOTP off: the caller's password and a current code (TOTP or recovery) first, so
    that a stolen access token alone cannot remove the second factor. Wrong ones count
    toward the lockout."""
    await confirm_password(session, user=user, password=password, actor=actor)
    await run_transaction(_disable_with_code, session, user, code, actor)


def _disable_with_code(session: Session, user: User, code: str, actor: Actor) -> None:
    session.refresh(user)
    if not user.mfa_enabled:
        raise MfaNotStarted("TOTP is not enabled")
    if check_code(session, user, code) is None:  # counted toward the lockout, audited
        raise Remembered(
            InvalidCode(),
            lambda session: count_wrong_secret(session, user=user, actor=actor, what="code"),
        )
    reset(session, user=user, actor=actor)


def challenge(
    session: Session,
    *,
    user: User,
    version: int,
    purpose: TokenPurpose = TokenPurpose.MFA_LOGIN,
) -> MfaChallenge:
    """After a correct password (or a passkey without user verification: `purpose` says
    which), checked under credentials `version`: a short-lived token usable only at
    /auth/login/mfa, only MAX_MFA_ATTEMPTS times, and only while the credentials stay at
    that version. A part of the caller's step."""
    jti = new_jti()
    row = action_tokens.add_challenge(
        session,
        user_id=user.id,
        digest=token_digest(jti),
        expires_at=mfa_expiry(),
        credentials_version=version,
        purpose=purpose,
    )
    issued = create_token(
        subject=user.id,
        session_id=row.id,
        token_type=TokenType.MFA,
        expires_at=row.expires_at,
        jti=jti,
    )
    return MfaChallenge(mfa_token=issued.token)


def check_code(session: Session, user: User, code: str) -> str | None:
    """The method that accepted `code` ("totp" or "recovery_code"), or None."""
    normalized = _normalize(code)
    if len(normalized) == 6 and normalized.isdigit():
        secret = _secret_of(user)
        step = matching_step(secret, normalized) if secret else None
        if step is not None and mfa_crud.claim_step(session, user_id=user.id, step=step):
            return "totp"
        return None
    if mfa_crud.use_recovery_code(session, user_id=user.id, digest=recovery_digest(normalized)):
        return "recovery_code"
    return None
