"""Single-use action tokens: issue one (keeping only its digest), consume it once, spend the rest.

Lookups go by the SHA-256 digest of a 256-bit token, so the database never holds a usable token
and a lookup's timing tells nothing about a valid one. Every state change is one conditional
UPDATE: of two concurrent uses, exactly one wins.
"""

import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, delete, update
from sqlmodel import Session, col, select

from app.core.security import token_digest
from app.models.action_token import ActionToken, TokenPurpose
from app.models.common import utcnow

TOKEN_BYTES = 32


def _purge_expired(session: Session, user_id: uuid.UUID) -> None:
    """Forget this user's expired tokens, so the table does not grow with every login."""
    session.exec(
        delete(ActionToken).where(
            col(ActionToken.user_id) == user_id, col(ActionToken.expires_at) <= utcnow()
        )
    )


def issue(
    session: Session,
    *,
    user_id: uuid.UUID,
    purpose: TokenPurpose,
    expires_at: datetime,
    email: str,
) -> str:
    """Store a new token's digest, bound to the address it is mailed to, and return the token
    itself (to be mailed). The caller commits."""
    _purge_expired(session, user_id)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        ActionToken(
            user_id=user_id,
            purpose=purpose,
            token_hash=token_digest(token),
            expires_at=expires_at,
            email=email,
        )
    )
    session.flush()
    return token


def _live(digest: str, purposes: Iterable[TokenPurpose]) -> list[ColumnElement[bool]]:
    return [
        col(ActionToken.token_hash) == digest,
        col(ActionToken.purpose).in_(list(purposes)),
        col(ActionToken.used_at).is_(None),
        col(ActionToken.expires_at) > utcnow(),
    ]


def find_live(
    session: Session, *, digest: str, purposes: Iterable[TokenPurpose]
) -> ActionToken | None:
    """The live token with this digest (token_digest of a mailed token, of an MFA token's
    jti), of one of these purposes; read without taking a lock."""
    return session.exec(
        select(ActionToken)
        .where(*_live(digest, purposes))
        .execution_options(populate_existing=True)
    ).first()


def consume(session: Session, *, row: ActionToken) -> bool:
    """Mark a token found live as used: True for the one caller that wins. The caller commits."""
    result = session.exec(
        update(ActionToken)
        .where(*_live(row.token_hash, [row.purpose]))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def count_attempt(
    session: Session,
    *,
    digest: str,
    user_id: uuid.UUID,
    purpose: TokenPurpose,
    max_attempts: int,
) -> bool:
    """Count one more try against a live token; False once it is spent, expired or used up."""
    result = session.exec(
        update(ActionToken)
        .where(
            *_live(digest, [purpose]),
            col(ActionToken.user_id) == user_id,
            col(ActionToken.attempts) < max_attempts,
        )
        .values(attempts=col(ActionToken.attempts) + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def add_challenge(
    session: Session,
    *,
    user_id: uuid.UUID,
    digest: str,
    expires_at: datetime,
    credentials_version: int,
    purpose: TokenPurpose = TokenPurpose.MFA_LOGIN,
) -> ActionToken:
    """Track an MFA login challenge by its token's jti digest, with the credentials version
    its first factor was checked under, and (by its purpose) which factor that was. The
    caller commits."""
    _purge_expired(session, user_id)
    row = ActionToken(
        user_id=user_id,
        purpose=purpose,
        token_hash=digest,
        expires_at=expires_at,
        credentials_version=credentials_version,
    )
    session.add(row)
    session.flush()
    return row


def mark_used(session: Session, *, digest: str) -> None:
    session.exec(
        update(ActionToken)
        .where(col(ActionToken.token_hash) == digest, col(ActionToken.used_at).is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def spend_all(session: Session, *, user_id: uuid.UUID, purposes: Iterable[TokenPurpose]) -> int:
    """Make every outstanding token of these purposes unusable. The caller commits."""
    result = session.exec(
        update(ActionToken)
        .where(
            col(ActionToken.user_id) == user_id,
            col(ActionToken.purpose).in_(list(purposes)),
            col(ActionToken.used_at).is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)
