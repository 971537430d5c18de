"""Passkey rows and ceremony challenges: session-first helpers; the caller commits."""

import uuid
from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from app.core.i18n import N_
from app.errors import NotFound
from app.models.common import utcnow
from app.models.passkey import CeremonyKind, Passkey, WebAuthnChallenge

# Bounds on the challenge table under a flood of option calls (besides the rate limit):
# an address keeps its newest LIVE_PER_ADDRESS challenges (as many as one minute of the
# default RATE_LIMIT_PASSKEY_OPTIONS), and each new challenge deletes up to EXPIRED_BATCH
# expired ones, so expired rows never pile up and no write deletes an unbounded number.
LIVE_PER_ADDRESS = 30
EXPIRED_BATCH = 100


def add_challenge(
    session: Session,
    *,
    kind: CeremonyKind,
    digest: str,
    expires_at: datetime,
    user_id: uuid.UUID | None,
    address: str,
) -> WebAuthnChallenge:
    """Keep a new challenge's digest; forget a batch of expired ones, and this address's
    beyond its newest LIVE_PER_ADDRESS.

    Rows locked by a concurrent writer doing the same are skipped (SKIP LOCKED on
    PostgreSQL), so workers never wait on each other here nor deadlock; what one skips, the
    other deletes."""
    expired = (
        select(WebAuthnChallenge.id)
        .where(col(WebAuthnChallenge.expires_at) <= utcnow())
        .order_by(col(WebAuthnChallenge.expires_at))
        .limit(EXPIRED_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.exec(delete(WebAuthnChallenge).where(col(WebAuthnChallenge.id).in_(expired)))
    row = WebAuthnChallenge(
        kind=kind, challenge_hash=digest, expires_at=expires_at, user_id=user_id, address=address
    )
    session.add(row)
    session.flush()
    # The new challenge stays, whatever later expiry times calls committed while this one
    # waited for the write lock gave their rows (under load, 30 of them did, and the call's
    # own row went): the address's others beyond the newest LIVE_PER_ADDRESS - 1 go.
    surplus = (
        select(WebAuthnChallenge.id)
        .where(col(WebAuthnChallenge.address) == address, col(WebAuthnChallenge.id) != row.id)
        .order_by(col(WebAuthnChallenge.expires_at).desc(), col(WebAuthnChallenge.id))
        .offset(LIVE_PER_ADDRESS - 1)
        .with_for_update(skip_locked=True)
    )
    session.exec(delete(WebAuthnChallenge).where(col(WebAuthnChallenge.id).in_(surplus)))
    return row


def live_challenge(
    session: Session, *, kind: CeremonyKind, digest: str, flow_id: uuid.UUID | None = None
) -> WebAuthnChallenge | None:
    conditions = [
        col(WebAuthnChallenge.kind) == kind,
        col(WebAuthnChallenge.challenge_hash) == digest,
        col(WebAuthnChallenge.used_at).is_(None),
        col(WebAuthnChallenge.expires_at) > utcnow(),
    ]
    if flow_id is not None:
        conditions.append(col(WebAuthnChallenge.id) == flow_id)
    return session.exec(select(WebAuthnChallenge).where(*conditions)).first()


def spend_challenge(session: Session, *, challenge_id: uuid.UUID) -> bool:
    """Mark a live challenge used: True for the one caller that wins."""
    result = session.exec(
        update(WebAuthnChallenge)
        .where(
            col(WebAuthnChallenge.id) == challenge_id,
            col(WebAuthnChallenge.used_at).is_(None),
            col(WebAuthnChallenge.expires_at) > utcnow(),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def of_user(session: Session, user_id: uuid.UUID) -> list[Passkey]:
    return list(
        session.exec(
            select(Passkey).where(col(Passkey.user_id) == user_id).order_by(col(Passkey.created_at))
        ).all()
    )


def by_credential_id(session: Session, credential_id: str) -> Passkey | None:
    return session.exec(select(Passkey).where(col(Passkey.credential_id) == credential_id)).first()


def get_own(session: Session, *, user_id: uuid.UUID, passkey_id: uuid.UUID) -> Passkey:
    row = session.get(Passkey, passkey_id)
    if row is None or row.user_id != user_id:
        raise NotFound(N_("Passkey not found"))
    return row


def record_use(session: Session, *, passkey: Passkey, sign_count: int) -> bool:
    """Store the new sign count over the one that was checked (compare-and-swap)."""
    result = session.exec(
        update(Passkey)
        .where(col(Passkey.id) == passkey.id, col(Passkey.sign_count) == passkey.sign_count)
        .values(sign_count=sign_count, last_used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
