"""Profile updates: a user's own (the name at once, a new email pending), and an admin's of
another user (a new email at once, a new password under the password policy)."""

import uuid

from sqlmodel import Session

from app.auth import verification
from app.auth.new_password import new_password_hash
from app.crud import users
from app.crud.audit import Actor
from app.models.user import User, normalize_email
from app.steps import run_transaction


async def update_own(
    session: Session, *, user: User, changes: dict[str, object], actor: Actor
) -> User:
    """Apply the owner's changes. A new email needs `current_password` and waits for its link
    (verification.request_change); it is asked for first, so a refusal changes nothing."""
    password = changes.pop("current_password", None)
    email = changes.pop("email", None)
    if isinstance(email, str) and normalize_email(email) != user.email:
        user = await verification.request_change(
            session,
            user=user,
            new_email=email,
            password=password if isinstance(password, str) else None,
            actor=actor,
        )
    if changes:
        user = await run_transaction(
            users.update_user, session, user=user, changes=changes, actor=actor
        )
    return user


async def update_by_admin(
    session: Session, *, user_id: uuid.UUID, changes: dict[str, object], actor: Actor
) -> User:
    """An admin's changes to another user: the read, then the new password judged against the
    account's email and name (as they will be) and hashed outside any transaction, then the
    write; the old address is told of a new one."""
    changes.pop("current_password", None)
    target = await run_transaction(users.get_user, session, user_id)
    password = changes.pop("password", None)
    hashed = None
    if isinstance(password, str):
        email, full_name = changes.get("email", target.email), changes.get("full_name")
        hashed = await new_password_hash(
            password,
            email=email if isinstance(email, str) else target.email,
            full_name=full_name if isinstance(full_name, str) else target.full_name,
        )
    old_email = target.email
    updated = await run_transaction(
        users.update_user,
        session,
        user=target,
        changes=changes,
        actor=actor,
        hashed_password=hashed,
    )
    await verification.email_set_by_admin(session, user=updated, old_email=old_email)
    return updated
