"""Self-service sign-up, one way for the API and the hosted page: the account as
auth.login.register creates it (open registration, rate limit, audit), then its verification
mail; the hosted page may then open the new account's first session."""

import uuid
from typing import Any

from sqlmodel import Session

from app.auth import login, verification
from app.crud.audit import Actor
from app.errors import InvalidCredentials
from app.models.user import User, UserCreate


async def sign_up(session: Session, *, body: UserCreate, actor: Actor) -> User:
    """Create the account and mail it a verification link (once committed)."""
    user = await login.register(session, body=body, actor=actor)
    await verification.send_verification(session, user=user, language=actor.language)
    return user


def first_login(session: Session, *, user_id: uuid.UUID, actor: Actor, start: login.Start) -> Any:
    """The session of an account just signed up with its password (what `start` opens), as a
    password login ends: refused if the account may not sign in (inactive, or unverified
    while verification is required)."""
    user = session.get(User, user_id, populate_existing=True)
    if user is None:
        raise InvalidCredentials()
    login.ensure_may_log_in(user)
    return login.complete(session, user=user, email=user.email, actor=actor, start=start)
