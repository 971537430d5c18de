"""TOTP state on the user row and the recovery codes. No HTTP; the caller commits.

Replays and double uses are refused by conditional UPDATEs, so two concurrent requests with
one code cannot both succeed.
"""

import uuid

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from app.core.security import constant_time_equals
from app.models.action_token import RecoveryCode
from app.models.common import utcnow
from app.models.user import User


def set_pending_secret(session: Session, *, user_id: uuid.UUID, encrypted_secret: str) -> bool:
    """Start (or restart) a set-up: the secret is kept, but not active until confirmed.
    False when TOTP is already on."""
    result = session.exec(
        update(User)
        .where(col(User.id) == user_id, col(User.mfa_enabled).is_(False))
        .values(mfa_secret=encrypted_secret, mfa_last_step=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def claim_step(session: Session, *, user_id: uuid.UUID, step: int) -> bool:
    """Record `step` as the last TOTP step used; False if it (or a later one) was used already."""
    result = session.exec(
        update(User)
        .where(
            col(User.id) == user_id,
            col(User.mfa_last_step).is_(None) | (col(User.mfa_last_step) < step),
        )
        .values(mfa_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def enable(
    session: Session, *, user_id: uuid.UUID, encrypted_secret: str, code_digests: list[str]
) -> bool:
    """Turn TOTP on for the pending secret that was checked, with these recovery codes; False
    if meanwhile it was turned on or the set-up restarted (the caller rolls back)."""
    result = session.exec(
        update(User)
        .where(
            col(User.id) == user_id,
            col(User.mfa_enabled).is_(False),
            col(User.mfa_secret) == encrypted_secret,
        )
        .values(mfa_enabled=True, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
    session.add_all(RecoveryCode(user_id=user_id, code_hash=digest) for digest in code_digests)
    return True


def disable(session: Session, *, user_id: uuid.UUID) -> bool:
    """Turn TOTP off and forget its secret and codes; True if it was on."""
    was_enabled = session.exec(
        select(User.mfa_enabled).where(col(User.id) == user_id).with_for_update()
    ).first()
    session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
    session.exec(
        update(User)
        .where(col(User.id) == user_id)
        .values(mfa_enabled=False, mfa_secret=None, mfa_last_step=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(was_enabled)


def use_recovery_code(session: Session, *, user_id: uuid.UUID, digest: str) -> bool:
    """Spend the unused recovery code with this digest; False if there is none."""
    rows = session.exec(
        select(RecoveryCode.id, RecoveryCode.code_hash).where(
            col(RecoveryCode.user_id) == user_id, col(RecoveryCode.used_at).is_(None)
        )
    ).all()
    match = None
    for code_id, code_hash in rows:  # compare them all, in constant time each
        if constant_time_equals(code_hash, digest):
            match = code_id
    if match is None:
        return False
    result = session.exec(
        update(RecoveryCode)
        .where(col(RecoveryCode.id) == match, col(RecoveryCode.used_at).is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def recovery_codes_left(session: Session, *, user_id: uuid.UUID) -> int:
    return len(
        session.exec(
            select(RecoveryCode.id).where(
                col(RecoveryCode.user_id) == user_id, col(RecoveryCode.used_at).is_(None)
            )
        ).all()
    )
