"""The account mails: a plain-text and an HTML body, each with a link to a page, in the
language `locale` (app/core/i18n.py; `mail_locale` picks it).

Unless FRONTEND_URL is set, the pages are the service's own (ACCOUNT.md, "Mailed links"):
`{PUBLIC_URL}/account/reset-password?token=...`, `/account/verify-email`,
`/account/email/confirm`, `/account/invitation`. With FRONTEND_URL, the links go to a
frontend of the integrator's own, `{FRONTEND_URL}/reset-password?token=...`,
`/verify-email` (a change of address too), `/invitation`, whose page posts the token to the
API.
"""

from dataclasses import dataclass
from functools import partial
from html import escape
from urllib.parse import urlencode

from app.core import i18n
from app.core.config import get_settings
from app.core.i18n import N_
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


def mail_locale(*preferences: str | None) -> str:
    """A mail's language: the first of `preferences` that names a supported one (the
    language of the request that caused the mail, `Actor.language`, or the recipient's
    last sign-in, `User.locale`), else English."""
    for preference in preferences:
        found = i18n.from_accept_language(preference)
        if found:
            return found
    return i18n.DEFAULT_LOCALE


def _subject(locale: str, subject: str) -> str:
    brand = get_settings().brand_name
    return i18n.translate(locale, N_("%(service)s: %(subject)s", service=brand, subject=subject))


def _with_link(
    to: str, locale: str, subject: str, lines: list[str], url: str, action: str, footer: str
) -> Mail:
    """A mail of a few lines, a link and a footer, as plain text and as HTML; the texts are
    in `locale` already."""
    paragraphs = "".join(f"<p>{escape(line)}</p>" for line in lines)
    href = escape(url, quote=True)
    html = (
        f'<!DOCTYPE html><html lang="{locale}"><body style="font-family: sans-serif">'
        f'{paragraphs}<p><a href="{href}">{escape(action)}</a></p>'
        f'<p style="color: #666">{escape(footer)}</p></body></html>'
    )
    text = "\n\n".join([*lines, url, footer]) + "\n"
    return Mail(to=to, subject=_subject(locale, subject), text=text, html=html)


def reset_password(to: str, token: str, *, locale: str = i18n.DEFAULT_LOCALE) -> Mail:
    settings = get_settings()
    t = partial(i18n.translate, locale)
    lines = [
        t(N_("Someone asked to reset the password of your %(service)s account.",
             service=settings.brand_name)),
        i18n.translate_plural(
            locale,
            "To choose a new password, open this link within %(num)d minute:",
            "To choose a new password, open this link within %(num)d minutes:",
            settings.RESET_TOKEN_EXPIRE_MINUTES,
        ),
    ]  # fmt: skip
    return _with_link(
        to,
        locale,
        t(N_("reset your password")),
        lines,
        link(RESET_PAGE, token),
        t(N_("Reset your password")),
        t(N_("If it was not you, ignore this mail: your password stays as it is.")),
    )


def verify_email(to: str, token: str, *, locale: str = i18n.DEFAULT_LOCALE) -> Mail:
    settings = get_settings()
    t = partial(i18n.translate, locale)
    lines = [
        t(N_("Please confirm that this is the email address of your %(service)s account.",
             service=settings.brand_name)),
        i18n.translate_plural(
            locale,
            "Open this link within %(num)d hour:",
            "Open this link within %(num)d hours:",
            settings.VERIFY_TOKEN_EXPIRE_HOURS,
        ),
    ]  # fmt: skip
    return _with_link(
        to,
        locale,
        t(N_("confirm your email address")),
        lines,
        link(VERIFY_PAGE, token),
        t(N_("Confirm your email address")),
        t(N_("If you did not create an account or change its address, ignore this mail.")),
    )


def change_email(to: str, token: str, *, locale: str = i18n.DEFAULT_LOCALE) -> Mail:
    """To the pending address: the link that moves the account there."""
    settings = get_settings()
    t = partial(i18n.translate, locale)
    lines = [
        t(N_("Someone asked to move a %(service)s account to this email address.",
             service=settings.brand_name)),
        i18n.translate_plural(
            locale,
            "To confirm, open this link within %(num)d hour:",
            "To confirm, open this link within %(num)d hours:",
            settings.VERIFY_TOKEN_EXPIRE_HOURS,
        ),
    ]  # fmt: skip
    return _with_link(
        to,
        locale,
        t(N_("confirm your new email address")),
        lines,
        link(CHANGE_PAGE, token),
        t(N_("Confirm your new email address")),
        t(N_("If it was not you, ignore this mail: no account moves to this address without it.")),
    )


def email_change_notice(
    to: str, new_email: str, *, done: bool = False, locale: str = i18n.DEFAULT_LOCALE
) -> Mail:
    """To the old address: its account is moving (or, set by an admin, has moved) away."""
    brand = get_settings().brand_name
    t = partial(i18n.translate, locale)
    lines = (
        [
            t(N_("Your %(service)s account was moved to the address %(email)s.",
                 service=brand, email=new_email)),
            t(N_("An administrator made this change.")),
        ]
        if done
        else [
            t(N_("Your %(service)s account is to be moved to the address %(email)s.",
                 service=brand, email=new_email)),
            t(N_("It moves only once the link mailed to that address is opened.")),
        ]
    )  # fmt: skip
    lines.append(t(N_("If it was not you, reset your password and contact your administrator.")))
    subject = _subject(locale, t(N_("your account's email address")))
    return Mail(to=to, subject=subject, text="\n\n".join(lines) + "\n")


def invitation(
    to: str, token: str, *, organization: str, days: int, locale: str = i18n.DEFAULT_LOCALE
) -> Mail:
    """An invitation to an organization (AUTHZ.md): the link asks the invitee to sign in or
    sign up with this address, then accept."""
    t = partial(i18n.translate, locale)
    lines = [
        t(N_("You are invited to join %(organization)s on %(service)s.",
             organization=organization, service=get_settings().brand_name)),
        i18n.translate_plural(
            locale,
            "To accept, open this link within %(num)d day and sign in (or sign up) with this"
            " email address:",
            "To accept, open this link within %(num)d days and sign in (or sign up) with this"
            " email address:",
            days,
        ),
    ]  # fmt: skip
    return _with_link(
        to,
        locale,
        t(N_("join %(organization)s", organization=organization)),
        lines,
        link(INVITATION_PAGE, token),
        t(N_("Accept the invitation")),
        t(N_("If you do not know why you got this, ignore it: nothing happens without you.")),
    )
