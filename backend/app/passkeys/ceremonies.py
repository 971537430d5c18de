"""The two WebAuthn ceremonies: register a passkey, sign in with one.

The `webauthn` package checks every response (origin, RP ID, challenge, attestation,
signature, flags); this module keeps the challenges (single-use, 5 minutes, bound to their
ceremony and user), the sign counter rule, and the login rules shared with passwords
(address budget, lockout, audit, MFA)."""

import hashlib
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from app.auth import lockout, mfa
from app.auth.credentials import confirm_password
from app.auth.login import Opener, complete, ensure_may_log_in
from app.auth.tokens import start_session
from app.core import metrics, ratelimit
from app.core.config import get_settings
from app.crud import audit, users
from app.crud import passkeys as crud
from app.crud.audit import Actor
from app.db import Remembered
from app.errors import IncorrectPassword, PasskeyLoginFailed, PasskeyRefused
from app.models.action_token import TokenPurpose
from app.models.common import utcnow
from app.models.passkey import CeremonyKind, Passkey, PasskeyOptions
from app.models.session import AuthSession, SessionKind
from app.models.user import User
from app.passkeys.authenticators import authenticator_name
from app.steps import run_transaction

CHALLENGE_TTL = timedelta(minutes=5)
RECENT_LOGIN = timedelta(minutes=5)  # a session this young needs no password to add a passkey
TIMEOUT_MS = int(CHALLENGE_TTL.total_seconds() * 1000)
# What a browser may send that the package cannot parse: refused like a bad signature.
MALFORMED = (WebAuthnException, ValueError, TypeError, KeyError, AttributeError)


def _digest(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    return PublicKeyCredentialDescriptor(id=base64url_to_bytes(passkey.credential_id))


async def begin_registration(
    session: Session,
    *,
    user: User,
    auth_session: AuthSession,
    password: str | None,
    actor: Actor,
) -> dict[str, Any]:
    """Creation options, after the password, or from a session opened by a login within
    RECENT_LOGIN (recent_login)."""
    if password is not None:
        await confirm_password(session, user=user, password=password, actor=actor)
    elif not recent_login(auth_session):
        raise IncorrectPassword("Password required: the last login was over 5 minutes ago")
    return await run_transaction(_registration_options, session, user, _address(actor))


def recent_login(auth_session: AuthSession) -> bool:
    """Whether the session was opened by a password or passkey login under RECENT_LOGIN ago:
    an API session (/auth/login; a refresh keeps its created_at, so it never makes a login
    recent) or a browser session of the hosted login (its auth_time: a login asked again
    opens a new one). Never an OAuth code exchange's."""
    now = utcnow()
    if auth_session.kind is SessionKind.API:
        return now - auth_session.created_at < RECENT_LOGIN
    if auth_session.kind is SessionKind.BROWSER and auth_session.auth_time is not None:
        return now - auth_session.auth_time < RECENT_LOGIN
    return False


def _address(actor: Actor) -> str:
    return (actor.ip or "-")[:64]


def _registration_options(session: Session, user: User, address: str) -> dict[str, Any]:
    settings = get_settings()
    options = generate_registration_options(
        rp_id=settings.webauthn_rp_id,
        rp_name=settings.webauthn_rp_name,
        user_id=user.id.bytes,
        user_name=user.email,
        user_display_name=user.full_name or user.email,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            require_resident_key=True,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[_descriptor(p) for p in crud.of_user(session, user.id)],
    )
    crud.add_challenge(
        session,
        kind=CeremonyKind.REGISTRATION,
        digest=_digest(options.challenge),
        expires_at=utcnow() + CHALLENGE_TTL,
        user_id=user.id,
        address=address,
    )
    return dict(options_to_json_dict(options))


def register(
    session: Session, *, user: User, credential: dict[str, Any], name: str | None, actor: Actor
) -> Passkey:
    """Verify a registration response to this user's live challenge and keep the passkey;
    anything wrong is 400 and stores nothing."""
    settings = get_settings()
    try:
        parsed: RegistrationCredential = parse_registration_credential_json(credential)
        challenge = parse_client_data_json(parsed.response.client_data_json).challenge
        row = crud.live_challenge(
            session, kind=CeremonyKind.REGISTRATION, digest=_digest(challenge)
        )
        if row is None or row.user_id != user.id:
            raise PasskeyRefused("Unknown, used or expired challenge")
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=settings.webauthn_rp_id,
            expected_origin=settings.webauthn_origins,
        )
    except MALFORMED as error:
        raise PasskeyRefused(f"Passkey registration refused: {error}"[:200]) from None
    if not crud.spend_challenge(session, challenge_id=row.id):
        raise PasskeyRefused("Unknown, used or expired challenge")
    passkey = Passkey(
        user_id=user.id,
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=[t.value for t in parsed.response.transports or []],
        aaguid=verified.aaguid,
        name=name or authenticator_name(verified.aaguid),
    )
    session.add(passkey)
    try:
        session.flush()
    except IntegrityError:
        raise PasskeyRefused("This passkey is already registered") from None
    audit.record(
        session, "passkey.registered", actor=actor, subject_id=user.id, passkey_id=str(passkey.id)
    )
    return passkey


def rename(session: Session, *, user_id: uuid.UUID, passkey_id: uuid.UUID, name: str) -> Passkey:
    passkey = crud.get_own(session, user_id=user_id, passkey_id=passkey_id)
    passkey.name = name
    session.add(passkey)
    return passkey


def delete(session: Session, *, user_id: uuid.UUID, passkey_id: uuid.UUID, actor: Actor) -> None:
    passkey = crud.get_own(session, user_id=user_id, passkey_id=passkey_id)
    session.delete(passkey)
    audit.record(
        session, "passkey.deleted", actor=actor, subject_id=user_id, passkey_id=str(passkey_id)
    )


def login_options(session: Session, *, email: str | None, actor: Actor) -> PasskeyOptions:
    """Request options, counted toward the address's RATE_LIMIT_PASSKEY_OPTIONS. They never
    list credentials (every passkey here is discoverable), so they are the same for any
    email, known or not; an email only binds the challenge to its user."""
    address = _address(actor)
    ratelimit.hit("passkey_options", get_settings().RATE_LIMIT_PASSKEY_OPTIONS, address)
    user = users.get_user_by_email(session, email) if email else None
    options = generate_authentication_options(
        rp_id=get_settings().webauthn_rp_id,
        timeout=TIMEOUT_MS,
        allow_credentials=[],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    row = crud.add_challenge(
        session,
        kind=CeremonyKind.AUTHENTICATION,
        digest=_digest(options.challenge),
        expires_at=utcnow() + CHALLENGE_TTL,
        user_id=user.id if user else None,
        address=address,
    )
    return PasskeyOptions(flow_id=row.id, options=dict(options_to_json_dict(options)))


def login(
    session: Session,
    *,
    flow_id: uuid.UUID,
    credential: dict[str, Any],
    actor: Actor,
    opener: Opener | None = None,
) -> Any:
    """Sign in with a passkey. With user verification it is both factors (amr `hwk user`);
    without, one (`hwk`), so a user with TOTP is asked for a code as after a password."""
    settings = get_settings()
    ratelimit.hit("login_ip", settings.RATE_LIMIT_LOGIN_IP, actor.ip or "-")
    try:
        parsed: AuthenticationCredential = parse_authentication_credential_json(credential)
        challenge = parse_client_data_json(parsed.response.client_data_json).challenge
    except MALFORMED:
        raise _failed(None, actor, "malformed") from None
    row = crud.live_challenge(
        session, kind=CeremonyKind.AUTHENTICATION, digest=_digest(challenge), flow_id=flow_id
    )
    passkey = crud.by_credential_id(session, bytes_to_base64url(parsed.raw_id))
    user = session.get(User, passkey.user_id, populate_existing=True) if passkey else None
    if row is None or passkey is None or user is None:
        raise _failed(user, actor, "unknown credential or challenge")
    if (row.user_id is not None and row.user_id != user.id) or (
        parsed.response.user_handle is not None and parsed.response.user_handle != user.id.bytes
    ):
        raise _failed(user, actor, "credential of another user")
    lockout.ensure_not_locked(session, email=user.email, actor=actor)
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=settings.webauthn_rp_id,
            expected_origin=settings.webauthn_origins,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=0,  # the counter rule is ours, below, to audit it
        )
    except MALFORMED:
        raise _failed(user, actor, "verification failed") from None
    stored, presented = passkey.sign_count, verified.new_sign_count
    if (stored or presented) and presented <= stored:
        raise _failed(user, actor, "sign counter went backwards", clone=passkey)
    if not crud.spend_challenge(session, challenge_id=row.id) or not crud.record_use(
        session, passkey=passkey, sign_count=presented
    ):
        raise _failed(user, actor, "challenge already used")
    ensure_may_log_in(user)
    if not verified.user_verified and user.mfa_enabled:
        return mfa.challenge(
            session,
            user=user,
            version=user.credentials_version,
            purpose=TokenPurpose.MFA_LOGIN_PASSKEY,  # the code's session says `hwk otp`
        )
    amr = ("hwk", "user") if verified.user_verified else ("hwk",)
    return complete(
        session,
        user=user,
        email=user.email,
        actor=actor,
        start=opener(amr) if opener else start_session,
        event="passkey.login_succeeded",
        passkey_id=str(passkey.id),
        user_verified=verified.user_verified,
    )


def _failed(
    user: User | None, actor: Actor, reason: str, clone: Passkey | None = None
) -> Remembered:
    """A refused passkey sign-in (401), to raise: the refused transaction is rolled back, and
    the refusal is audited and counted toward the lockout of a known credential's account."""
    subject_id, email = (user.id, user.email) if user is not None else (None, None)
    clone_id = str(clone.id) if clone is not None else None

    def record(session: Session) -> None:
        if email is not None:
            lockout.record_failure(session, email=email, actor=actor, subject_id=subject_id)
        if clone_id is not None:
            audit.record(
                session,
                "passkey.clone_suspected",
                actor=actor,
                subject_id=subject_id,
                passkey_id=clone_id,
            )
        audit.record(
            session, "passkey.login_failed", actor=actor, subject_id=subject_id, reason=reason
        )
        metrics.LOGINS.labels("failed").inc()

    return Remembered(PasskeyLoginFailed(), record)
