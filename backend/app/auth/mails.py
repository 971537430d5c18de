"""The account mails: a plain-text and an HTML body, each with a link to a page.

Unless FRONTEND_URL is set, the pages are the service's own (ACCOUNT.md, "Mailed links"):
`{PUBLIC_URL}/account/reset-password?token=...`, `/account/verify-email`,
`/account/email/confirm`, `/account/invitation`. With FRONTEND_URL, the links go to a
frontend of the integrator's own, `{FRONTEND_URL}/reset-password?token=...`,
`/verify-email` (a change of address too), `/invitation`, whose page posts the token to the
API.
"""

from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

from app.core.config import get_settings
from app.core.mail import Mail


@dataclass(frozen=True, slots=True)
class Page:
    """Where a mailed link opens: a path under FRONTEND_URL, else the hosted page's."""

    frontend: str
    hosted: str


RESET_PAGE = Page("/reset-password", "/account/reset-password")
VERIFY_PAGE = Page("/verify-email", "/account/verify-email")
CHANGE_PAGE = Page("/verify-email", "/account/email/confirm")
INVITATION_PAGE = Page("/invitation", "/account/invitation")


def link(page: Page, token: str) -> str:
    settings = get_settings()
    if settings.FRONTEND_URL:
        base, path = settings.FRONTEND_URL, page.frontend
    else:
        base, path = settings.PUBLIC_URL, page.hosted
    return f"{base.rstrip('/')}{path}?{urlencode({'token': token})}"


def _with_link(to: str, subject: str, lines: list[str], url: str, action: str, footer: str) -> Mail:
    """A mail of a few lines, a link and a footer, as plain text and as HTML."""
    paragraphs = "".join(f"<p>{escape(line)}</p>" for line in lines)
    href = escape(url, quote=True)
    html = (
        '<!DOCTYPE html><html><body style="font-family: sans-serif">'
        f'{paragraphs}<p><a href="{href}">{escape(action)}</a></p>'
        f'<p style="color: #666">{escape(footer)}</p></body></html>'
    )
    text = "\n\n".join([*lines, url, footer]) + "\n"
    return Mail(to=to, subject=f"{get_settings().PROJECT_NAME}: {subject}", text=text, html=html)


def reset_password(to: str, token: str) -> Mail:
    settings = get_settings()
    minutes = settings.RESET_TOKEN_EXPIRE_MINUTES
    lines = [
        f"Someone asked to reset the password of your {settings.PROJECT_NAME} account.",
        f"To choose a new password, open this link within {minutes} minutes:",
    ]
    footer = "If it was not you, ignore this mail: your password stays as it is."
    url = link(RESET_PAGE, token)
    return _with_link(to, "reset your password", lines, url, "Reset your password", footer)


def verify_email(to: str, token: str) -> Mail:
    settings = get_settings()
    hours = settings.VERIFY_TOKEN_EXPIRE_HOURS
    lines = [
        f"Please confirm that this is the email address of your {settings.PROJECT_NAME} account.",
        f"Open this link within {hours} hours:",
    ]
    footer = "If you did not create an account or change its address, ignore this mail."
    action = "Confirm your email address"
    return _with_link(
        to, "confirm your email address", lines, link(VERIFY_PAGE, token), action, footer
    )


def change_email(to: str, token: str) -> Mail:
    """To the pending address: the link that moves the account there."""
    settings = get_settings()
    hours = settings.VERIFY_TOKEN_EXPIRE_HOURS
    lines = [
        f"Someone asked to move a {settings.PROJECT_NAME} account to this email address.",
        f"To confirm, open this link within {hours} hours:",
    ]
    footer = "If it was not you, ignore this mail: no account moves to this address without it."
    action = "Confirm your new email address"
    url = link(CHANGE_PAGE, token)
    return _with_link(to, "confirm your new email address", lines, url, action, footer)


def email_change_notice(to: str, new_email: str, *, done: bool = False) -> Mail:
    """To the old address: its account is moving (or, set by an admin, has moved) away."""
    settings = get_settings()
    what = "was moved" if done else "is to be moved"
    text = (
        f"Your {settings.PROJECT_NAME} account {what} to the address {new_email}.\n\n"
        + (
            "An administrator made this change.\n"
            if done
            else "It moves only once the link mailed to that address is opened.\n"
        )
        + "If it was not you, reset your password and contact your administrator.\n"
    )
    return Mail(to=to, subject=f"{settings.PROJECT_NAME}: your account's email address", text=text)


def invitation(to: str, token: str, *, organization: str, days: int) -> Mail:
    """An invitation to an organization (AUTHZ.md): the link asks the invitee to sign in or
    sign up with this address, then accept."""
    settings = get_settings()
    lines = [
        f"You are invited to join {organization} on {settings.PROJECT_NAME}.",
        f"To accept, open this link within {days} days and sign in (or sign up) with this "
        "email address:",
    ]
    footer = "If you do not know why you got this, ignore it: nothing happens without you."
    url = link(INVITATION_PAGE, token)
    return _with_link(to, f"join {organization}", lines, url, "Accept the invitation", footer)
