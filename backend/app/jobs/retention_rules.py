"""What the retention janitor deletes: one rule per table that grows without bound, each the
condition that makes a row purgeable and why it is safe (docs/retention.md says the same per
table, and why the other tables are bounded). A rule never reaches a row that still decides
anything: a token it refers to has expired, or its refusal no longer needs the row."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import SQLModel, col

from app.auth.lockout import FAILURES_FORGOTTEN_AFTER
from app.core.config import Settings
from app.models.action_token import ActionToken
from app.models.audit import AuditEvent
from app.models.client import AuthorizationCode, ClientToken
from app.models.lockout import LoginFailure
from app.models.organization import Invitation
from app.models.passkey import WebAuthnChallenge
from app.models.session import AuthSession
from app.oauth.authorize import CODE_KEPT_FOR

# EVENTS.md, "Settled points": a row is purgeable at most 30 days after it expired or was
# revoked. A session's refresh tokens all expire with it (a rotation moves `expires_at`, and
# none happens once revoked), so a token of a purged session is refused as unknown, as it
# would be as revoked; the month keeps the row for whoever investigates a reuse alarm.
SESSION_KEPT_FOR = timedelta(days=30)
# Short-lived single-use rows: a day after expiry, for a support question about a link.
EXPIRED_KEPT_FOR = timedelta(days=1)

Condition = Callable[[datetime, Settings], ColumnElement[bool] | None]


@dataclass(frozen=True)
class Rule:
    table: str
    model: type[SQLModel]
    purgeable: Condition  # None: nothing of this table is purgeable under these settings
    why: str


def _sessions(now: datetime, _settings: Settings) -> ColumnElement[bool]:
    before = now - SESSION_KEPT_FOR
    return or_(col(AuthSession.expires_at) < before, col(AuthSession.revoked_at) < before)


def _client_tokens(now: datetime, _settings: Settings) -> ColumnElement[bool]:
    return col(ClientToken.expires_at) <= now


def _codes(now: datetime, _settings: Settings) -> ColumnElement[bool]:
    return col(AuthorizationCode.expires_at) < now - CODE_KEPT_FOR


def _action_tokens(now: datetime, _settings: Settings) -> ColumnElement[bool]:
    return col(ActionToken.expires_at) < now - EXPIRED_KEPT_FOR


def _challenges(now: datetime, _settings: Settings) -> ColumnElement[bool]:
    return col(WebAuthnChallenge.expires_at) < now - EXPIRED_KEPT_FOR


def _login_failures(now: datetime, _settings: Settings) -> ColumnElement[bool]:
    unlocked = or_(col(LoginFailure.locked_until).is_(None), col(LoginFailure.locked_until) < now)
    return and_(col(LoginFailure.updated_at) < now - FAILURES_FORGOTTEN_AFTER, unlocked)


def _invitations(now: datetime, _settings: Settings) -> ColumnElement[bool]:
    return col(Invitation.expires_at) < now - EXPIRED_KEPT_FOR


def _audit(now: datetime, settings: Settings) -> ColumnElement[bool] | None:
    if settings.AUDIT_RETENTION_DAYS == 0:
        return None
    return col(AuditEvent.at) < now - timedelta(days=settings.AUDIT_RETENTION_DAYS)


RULES: tuple[Rule, ...] = (
    Rule(
        "auth_session",
        AuthSession,
        _sessions,
        "30 days after it expired or was revoked: its refresh tokens expired with it, so a "
        "replay is refused either way; a live session keeps its spent token (reuse detection)",
    ),
    Rule(
        "oauth_client_token",
        ClientToken,
        _client_tokens,
        "once expired: the token's own `exp` refuses it before its row is read",
    ),
    Rule(
        "oauth_code",
        AuthorizationCode,
        _codes,
        "a day after expiry: until then a replayed code still revokes what it issued",
    ),
    Rule(
        "action_token",
        ActionToken,
        _action_tokens,
        "a day after expiry (used or not): an expired reset, verification or MFA token acts "
        "on nothing",
    ),
    Rule(
        "webauthn_challenge",
        WebAuthnChallenge,
        _challenges,
        "a day after expiry: a ceremony lasts minutes",
    ),
    Rule(
        "login_failure",
        LoginFailure,
        _login_failures,
        "no lock in force and no failure for 12 hours: the lockout forgets such counts anyway",
    ),
    Rule(
        "invitation",
        Invitation,
        _invitations,
        "a day after expiry (an accepted one is deleted when accepted)",
    ),
    Rule(
        "audit_event",
        AuditEvent,
        _audit,
        "older than AUDIT_RETENTION_DAYS (0 keeps every event)",
    ),
)
