"""A person deletes their own account (the hosted /account/delete): the password asked
again (auth/credentials.py: rate limited, refused while locked out, a wrong one counted
toward the lockout and audited), a current TOTP or recovery code when TOTP is on (a wrong one
counted too), and the rule of DELETE /users/{id}: never the last active admin
(crud/users.delete_user, audited user.deleted). Every session, passkey, consent, membership
and pending link goes with the account (their rows cascade), so its tokens stop working."""

from sqlmodel import Session

from app.auth import mfa
from app.auth.credentials import confirm_password, count_wrong_secret
from app.crud import users
from app.crud.audit import Actor
from app.db import Remembered
from app.errors import IncorrectPassword, InvalidCode
from app.models.user import User
from app.steps import run_transaction


async def delete_own(
    session: Session, *, user: User, password: str, code: str | None, actor: Actor
) -> None:
    """Delete `user` after their password (hashed in the pool, no transaction open), then in
    one transaction the code and the deletion, while the password checked is still theirs."""
    version = await confirm_password(session, user=user, password=password, actor=actor)
    await run_transaction(_delete, session, user, version, code, actor)


def _delete(session: Session, user: User, version: int, code: str | None, actor: Actor) -> None:
    # The user's row locked at the credentials checked: a password changed meanwhile means
    # the one given is no longer the account's.
    if not users.claim_credentials(session, user_id=user.id, version=version):
        raise IncorrectPassword()
    session.refresh(user)
    if user.mfa_enabled:
        if not code:
            raise InvalidCode()
        if mfa.check_code(session, user, code) is None:
            raise Remembered(
                InvalidCode(),
                lambda session: count_wrong_secret(session, user=user, actor=actor, what="code"),
            )
    users.delete_user(session, user=user, actor=actor)
