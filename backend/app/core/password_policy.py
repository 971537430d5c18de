"""What a new password must be (NIST SP 800-63B §3.1.1.2): long enough, no composition rules,
not among the most common breached passwords, and not built on the user's own email or name.

The one rule for every way a password is set (registration, reset, change, an admin, the
first superuser, an import of plain passwords): `problem()`. The models' validators call it
with what a body holds; the steps that set a password call it again with the account's email
and name (auth/new_password.py), so a form and the API refuse the same passwords.

The blocklist is the 100,000 most common passwords of Mark Burnett's 10 million password list,
as SecLists publishes it (Passwords/Common-Credentials/10-million-password-list-top-100000.txt;
see common_passwords.NOTICE), shipped compressed beside this module and read once into a set.
"""

import lzma
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from app.core.config import get_settings
from app.core.i18n import N_
from app.core.passwords import max_password_bytes

BLOCKLIST_FILE = Path(__file__).with_name("common_passwords.txt.xz")
# The shortest piece of an email or a name that a password may not contain: "Al" or "li" in
# a password is a coincidence, "alice" is the user's own name.
MIN_PERSONAL_LENGTH = 4


class PasswordRule(StrEnum):
    """Which rule refused a password: what a page translates, and what an API error names."""

    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    NUL = "nul"
    COMMON = "common"
    PERSONAL = "personal"
    BREACHED = "breached"  # PASSWORD_BREACH_CHECK (core/breach_check.py)


@dataclass(frozen=True, slots=True)
class PasswordProblem:
    rule: PasswordRule
    message: str  # names the rule, never the password


@lru_cache
def blocklist() -> frozenset[str]:
    """The common passwords, case-folded (`Password1` is as common as `password1`)."""
    with lzma.open(BLOCKLIST_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.casefold() for line in lines.read().splitlines() if line)


def personal_words(email: str | None, full_name: str | None) -> set[str]:
    """The pieces of the user's identity a password may not contain, case-folded: the email's
    local part and the full name (each whole, and each word of them), of 4 characters or more."""
    pieces: list[str] = []
    if email:
        local = email.rsplit("@", 1)[0]
        pieces += [local, *re.split(r"[\W_]+", local)]
    if full_name:
        name = " ".join(full_name.split())
        pieces += [name, *re.split(r"[\W_]+", name)]
    return {p.casefold() for p in pieces if len(p) >= MIN_PERSONAL_LENGTH}


def problem(
    password: str, *, email: str | None = None, full_name: str | None = None
) -> PasswordProblem | None:
    """Why a new password is refused, or None. Without `email` and `full_name`, the rules
    that need no account."""
    minimum = get_settings().PASSWORD_MIN_LENGTH
    if len(password) < minimum:
        return PasswordProblem(
            PasswordRule.TOO_SHORT,
            N_("Password must be at least %(minimum)s characters", minimum=minimum),
        )
    if len(password.encode()) > max_password_bytes():
        return PasswordProblem(
            PasswordRule.TOO_LONG,
            N_("Password must be at most %(maximum)s bytes in UTF-8", maximum=max_password_bytes()),
        )
    if "\x00" in password:
        return PasswordProblem(PasswordRule.NUL, N_("Password must not contain NUL characters"))
    folded = password.casefold()
    if folded in blocklist():
        return PasswordProblem(
            PasswordRule.COMMON,
            N_(
                "Password is one of the most common passwords found in data breaches:"
                " choose one that is harder to guess"
            ),
        )
    if any(word in folded for word in personal_words(email, full_name)):
        return PasswordProblem(
            PasswordRule.PERSONAL, N_("Password must not contain your email address or your name")
        )
    return None


def password_problem(
    password: str, *, email: str | None = None, full_name: str | None = None
) -> str | None:
    """`problem()`'s message, or None."""
    found = problem(password, email=email, full_name=full_name)
    return found.message if found else None


def warm_up() -> None:
    """Read the blocklist before the first registration needs it."""
    blocklist()
