"""What an account page says when a step of the API refuses a credential asked again (the
password, a TOTP or recovery code): the API's own refusals (auth/credentials.py: rate limit,
lockout, a wrong answer counted toward it), each as the form's problem and the status the
API answers, so the form is shown again, never a 500."""

from dataclasses import dataclass, field

from app.errors import (
    AccountLocked,
    DomainError,
    IncorrectPassword,
    InvalidCode,
    RateLimited,
    ServiceUnavailable,
)
from app.web.account import messages
from app.web.account.forms import Problems, too_many
from app.web.account.messages import N_, Message

WRONG_CODE = N_("That code is not right. Enter the current code from your app, or a recovery code.")
ENTER_CODE = N_("Enter the code from your authenticator app.")
LOCKED = N_("Too many wrong attempts. Wait %(minutes)s minutes and try again.")
BUSY = N_("The service is busy. Try again in a few seconds.")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A form shown again: its status, its fields' problems or a form-wide message, and the
    headers of the API's answer (Retry-After)."""

    status_code: int
    problems: Problems = field(default_factory=dict)
    message: Message | None = None
    headers: dict[str, str] = field(default_factory=dict)


def credential_refusal(error: DomainError, *, field_name: str = "password") -> Refusal | None:
    """The page's form of a refused credential check; None for any other refusal (the page
    decides)."""
    if isinstance(error, IncorrectPassword):
        return Refusal(400, problems={field_name: Message(messages.WRONG_PASSWORD)})
    if isinstance(error, InvalidCode):
        return Refusal(400, problems={"code": Message(WRONG_CODE)})
    if isinstance(error, RateLimited):
        minutes = max(1, -(-error.retry_after // 60))
        message = (
            Message(LOCKED, {"minutes": minutes})
            if isinstance(error, AccountLocked)
            else too_many(error.retry_after)
        )
        return Refusal(429, message=message, headers=error.headers())
    if isinstance(error, ServiceUnavailable):
        return Refusal(503, message=Message(BUSY), headers=error.headers())
    return None
