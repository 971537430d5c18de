"""The one way a new password becomes a hash: the policy with the account's email and name,
then (PASSWORD_BREACH_CHECK=hibp) the breach check, then the hash in the pool.

Registration, reset, change, an admin's update, the first superuser, `manage create-superuser`
and an import of plain passwords all come through here, so one rule refuses the same passwords
everywhere (422 WeakPassword, naming the rule)."""

from app.core import breach_check, password_policy
from app.core.config import get_settings
from app.core.password_policy import PasswordRule
from app.core.passwords import hash_password, hash_password_in_pool
from app.errors import WeakPassword

BREACHED = (
    "Password appears in a known data breach (Have I Been Pwned): choose one that has not"
    " been exposed"
)


def ensure_acceptable(
    password: str, *, email: str | None, full_name: str | None, field: str = "password"
) -> None:
    """The policy's rules (no network): WeakPassword when one refuses `password`."""
    found = password_policy.problem(password, email=email, full_name=full_name)
    if found is not None:
        raise WeakPassword(found.message, rule=found.rule, field=field)


def _breached(field: str) -> WeakPassword:
    return WeakPassword(BREACHED, rule=PasswordRule.BREACHED, field=field)


async def new_password_hash(
    password: str, *, email: str | None, full_name: str | None, field: str = "password"
) -> str:
    """The hash of an acceptable new password; WeakPassword (422) otherwise; HashQueueFull
    (503) when the hashing queue is full."""
    ensure_acceptable(password, email=email, full_name=full_name, field=field)
    if get_settings().PASSWORD_BREACH_CHECK == "hibp" and await breach_check.is_breached_async(
        password
    ):
        raise _breached(field)
    return await hash_password(password)


def new_password_hash_sync(
    password: str, *, email: str | None, full_name: str | None, field: str = "password"
) -> str:
    """new_password_hash for the command line, the start-up and the import (no event loop)."""
    ensure_acceptable(password, email=email, full_name=full_name, field=field)
    if get_settings().PASSWORD_BREACH_CHECK == "hibp" and breach_check.is_breached(password):
        raise _breached(field)
    return hash_password_in_pool(password)
