"""Rows of each table the janitor looks at, purgeable or not, written straight to the database
with the timestamps a test wants."""

import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session, SQLModel, func, select

from app.models.action_token import ActionToken, TokenPurpose
from app.models.audit import AuditEvent
from app.models.client import AuthorizationCode, ClientToken, OAuthClient
from app.models.lockout import LoginFailure
from app.models.organization import Invitation, Organization
from app.models.passkey import CeremonyKind, WebAuthnChallenge
from app.models.session import AuthSession
from app.models.user import User

DAY = timedelta(days=1)


def _hex() -> str:
    return secrets.token_hex(32)


def ensure_client(db: Session) -> OAuthClient:
    client = db.get(OAuthClient, "janitor-client")
    if client is None:
        client = OAuthClient(client_id="janitor-client", name="Janitor test")
        db.add(client)
        db.commit()
    return client


def ensure_organization(db: Session) -> Organization:
    org = db.exec(select(Organization).where(Organization.slug == "janitor")).first()
    if org is None:
        org = Organization(name="Janitor", slug="janitor")
        db.add(org)
        db.commit()
    return org


def session_row(user: User, *, expires: datetime, revoked: datetime | None = None) -> AuthSession:
    return AuthSession(
        user_id=user.id, refresh_jti=_hex()[:32], expires_at=expires, revoked_at=revoked
    )


def client_token(expires: datetime, client_id: str = "janitor-client") -> ClientToken:
    return ClientToken(jti=_hex(), client_id=client_id, scope="", expires_at=expires)


def code(user: User, expires: datetime) -> AuthorizationCode:
    return AuthorizationCode(
        digest=_hex(),
        client_id="janitor-client",
        user_id=user.id,
        redirect_uri="https://app.example/cb",
        scope="openid",
        auth_time=expires,
        amr="pwd",
        expires_at=expires,
    )


def action_token(user: User, expires: datetime, used: bool = False) -> ActionToken:
    return ActionToken(
        user_id=user.id,
        purpose=TokenPurpose.RESET_PASSWORD,
        token_hash=_hex(),
        expires_at=expires,
        used_at=expires - timedelta(minutes=1) if used else None,
    )


def challenge(expires: datetime) -> WebAuthnChallenge:
    return WebAuthnChallenge(
        kind=CeremonyKind.AUTHENTICATION, challenge_hash=_hex(), expires_at=expires
    )


def login_failure(updated: datetime, locked_until: datetime | None = None) -> LoginFailure:
    return LoginFailure(
        account=_hex(),
        address="10.0.0.1",
        failures=3,
        updated_at=updated,
        locked_until=locked_until,
    )


def invitation(org: Organization, expires: datetime) -> Invitation:
    return Invitation(
        organization_id=org.id,
        email=f"{uuid.uuid4().hex}@example.com",
        token_digest=_hex(),
        expires_at=expires,
    )


def audit_event(at: datetime) -> AuditEvent:
    return AuditEvent(at=at, event="test.old")


# For each table: a row the janitor must purge and one it must keep, as of now.
Pair = Callable[[Session, User, datetime], tuple[SQLModel, SQLModel]]
PAIRS: dict[str, Pair] = {
    "auth_session": lambda _db, u, now: (
        session_row(u, expires=now + DAY, revoked=now - 31 * DAY),
        session_row(u, expires=now + DAY, revoked=now - 29 * DAY),
    ),
    "oauth_client_token": lambda _db, _u, now: (
        client_token(now - timedelta(seconds=1)),
        client_token(now + timedelta(minutes=5)),
    ),
    "oauth_code": lambda _db, u, now: (code(u, now - 2 * DAY), code(u, now - DAY / 2)),
    "action_token": lambda _db, u, now: (
        action_token(u, now - 2 * DAY, used=True),
        action_token(u, now - DAY / 2),
    ),
    "webauthn_challenge": lambda _db, _u, now: (challenge(now - 2 * DAY), challenge(now)),
    "login_failure": lambda _db, _u, now: (
        login_failure(now - DAY),
        login_failure(now - DAY, locked_until=now + timedelta(minutes=5)),
    ),
    "invitation": lambda db, _u, now: (
        invitation(ensure_organization(db), now - 2 * DAY),
        invitation(ensure_organization(db), now + DAY),
    ),
    "audit_event": lambda _db, _u, now: (audit_event(now - 366 * DAY), audit_event(now - DAY)),
}


def count(db: Session, model: type[SQLModel]) -> int:
    total = db.exec(select(func.count()).select_from(model)).one()
    db.commit()
    return int(total)
