"""A user's update of their own profile: the name at once, a new email pending."""

from sqlmodel import Session

from app.auth import verification
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
