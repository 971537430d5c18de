"""Staging OpenID Connect signing keys (`manage keys rotate`): a new key is written to the
table every instance reads, published at once and signing KEY_PUBLISH_AHEAD_SECONDS later."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col

from app.core import crypto, keys
from app.core.config import get_settings
from app.errors import BadRequest
from app.models.signing_key import SigningKeyRow


def rotate(session: Session, *, algorithms: Sequence[str]) -> list[SigningKeyRow]:
    """Stage a new key for each algorithm. It signs KEY_PUBLISH_AHEAD_SECONDS from now, so
    that every client that caches the JWKS has it first; the key it replaces then retires
    and keeps verifying until its last token expired (core/keys.build_ring). A first key of
    an algorithm signs at once: no cache can miss it. Keys whose tokens have all expired
    are deleted. Refused (BadRequest) while a key of that algorithm is still staged. Once the
    transaction is committed, the caller drops this process's copy of the keys (keys.forget)
    so that it sees the new ones at once; the other processes see them within seconds."""
    ring = keys.reload()
    staged = [
        status.key
        for status in ring.statuses
        if status.state is keys.KeyState.NEXT and status.key.algorithm in algorithms
    ]
    if staged:
        key = staged[0]
        when = datetime.fromtimestamp(key.activates_at, UTC).isoformat(timespec="seconds")
        raise BadRequest(f"{key.algorithm} key {key.kid} is staged already: it signs from {when}")
    session.execute(delete(SigningKeyRow).where(col(SigningKeyRow.kid).not_in(list(ring.by_kid))))
    now = datetime.now(UTC)
    ahead = timedelta(seconds=get_settings().KEY_PUBLISH_AHEAD_SECONDS)
    rows = []
    for algorithm in algorithms:
        private = keys.new_private_key(algorithm)
        rows.append(
            SigningKeyRow(
                kid=keys.key_id(private.public_key()),
                algorithm=algorithm,
                private_key=crypto.encrypt(
                    keys.private_pem(private).decode(), info=crypto.SIGNING_KEY_INFO
                ),
                created_at=now,
                activates_at=now + ahead if algorithm in ring.active else now,
            )
        )
    session.add_all(rows)
    return rows
