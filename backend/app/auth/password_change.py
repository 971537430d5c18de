"""A user changes their own password: the current one is asked again; the other sessions end."""

import uuid

from sqlmodel import Session

from app.auth.credentials import confirm_password
from app.auth.new_password import new_password_hash
from app.crud import audit, users
from app.crud.audit import Actor
from app.errors import IncorrectPassword
from app.models.user import User
from app.steps import run_transaction


async def change_password(
    session: Session,
    *,
    user: User,
    current_session_id: uuid.UUID,
    current_password: str,
    new_password: str,
    actor: Actor,
) -> None:
    version = await confirm_password(session, user=user, password=current_password, actor=actor)
    new_hash = await new_password_hash(
        new_password, email=user.email, full_name=user.full_name, field="new_password"
    )
    await run_transaction(_apply, session, user.id, current_session_id, version, new_hash, actor)


def _apply(
    session: Session,
    user_id: uuid.UUID,
    current_session_id: uuid.UUID,
    version: int,
    new_hash: str,
    actor: Actor,
) -> None:
    # Compare-and-swap on the version: a password changed meanwhile means the checked one is
    # no longer current.
    if not users.replace_password(session, user_id=user_id, new_hash=new_hash, version=version):
        raise IncorrectPassword()
    ended = users.end_credentials(session, user_id=user_id, keep=current_session_id)
    audit.record(session, "auth.password_changed", actor=actor, subject_id=user_id, sessions=ended)
