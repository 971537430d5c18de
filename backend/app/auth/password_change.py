"""A user changes their own password: the current one is asked again; the other sessions end."""

import uuid

from sqlalchemy import update
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool

from app.core import ratelimit
from app.core.config import get_settings
from app.core.passwords import hash_password, verify_password
from app.crud import action_tokens, audit, sessions
from app.crud.audit import Actor
from app.errors import IncorrectPassword
from app.models.action_token import TokenPurpose
from app.models.common import utcnow
from app.models.user import User


async def change_password(
    session: Session,
    *,
    user: User,
    current_session_id: uuid.UUID,
    current_password: str,
    new_password: str,
    actor: Actor,
) -> None:
    await run_in_threadpool(
        ratelimit.hit, "password_check", get_settings().RATE_LIMIT_LOGIN, str(user.id)
    )
    old_hash = user.hashed_password
    matches, _ = await verify_password(current_password, old_hash)
    if not matches:
        raise IncorrectPassword()
    new_hash = await hash_password(new_password)
    await run_in_threadpool(_apply, session, user.id, current_session_id, old_hash, new_hash, actor)


def _apply(
    session: Session,
    user_id: uuid.UUID,
    current_session_id: uuid.UUID,
    old_hash: str,
    new_hash: str,
    actor: Actor,
) -> None:
    # Compare-and-swap: a password changed meanwhile means the checked one is no longer current.
    result = session.exec(
        update(User)
        .where(col(User.id) == user_id, col(User.hashed_password) == old_hash)
        .values(hashed_password=new_hash, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        raise IncorrectPassword()
    ended = sessions.revoke_all(session, user_id, keep=current_session_id)
    action_tokens.spend_all(session, user_id=user_id, purposes=[TokenPurpose.RESET_PASSWORD])
    audit.record(session, "auth.password_changed", actor=actor, subject_id=user_id, sessions=ended)
    session.commit()
