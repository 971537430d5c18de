"""What the account pages say, as message ids: each is translated when its page is rendered
(`{{ _(message.text, **message.args) }}`), so none holds a person's input (that goes in
`args`, escaped). `N_` marks a text for extraction without translating it here."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.core.i18n import N_ as N_  # re-exported: the account modules mark with it


@dataclass(frozen=True, slots=True)
class Message:
    text: str
    args: Mapping[str, object] = field(default_factory=dict)


# Refusals of a whole page
EXPIRED_FORM = N_("This form has expired. Reload the page and try again.")
LINK_INVALID = N_(
    "This link has expired or has already been used. Ask for a new one and open the newest."
)
REGISTRATION_CLOSED = N_("New accounts cannot be created here. Ask an administrator.")
ADDRESS_TAKEN_NOW = N_("Another account now uses this address. Your address stays as it was.")

# Headings of those pages
LINK_HEADING = N_("This link cannot be used")
REFUSED_HEADING = N_("This cannot be done")

ASK_NEW_LINK = N_("Ask for a new link")

# Field problems
INVALID_EMAIL = N_("Enter a valid email address.")
EMAIL_TAKEN = N_("An account already uses this address. Sign in, or reset its password.")
EMAIL_IN_USE = N_("Another account uses this address.")
SAME_EMAIL = N_("This is already your address.")
PASSWORD_TOO_SHORT = N_("Use at least %(minimum)s characters.")
PASSWORD_TOO_LONG = N_("Use at most %(maximum)s bytes (accented letters and symbols count more).")
PASSWORD_NUL = N_("The password cannot contain a NUL character.")
NAME_INVALID = N_("Use at most %(maximum)s characters, without NUL characters.")
ENTER_PASSWORD = N_("Enter your current password.")
WRONG_PASSWORD = N_("That is not your current password.")
INVALID_VALUE = N_("This value cannot be used.")

# Form-wide problems
TOO_MANY = N_("Too many attempts. Wait %(minutes)s minutes and try again.")

# Notices
PASSWORD_RESET = N_("Your password has been changed. Sign in with the new one.")
EMAIL_CONFIRMED = N_("Your email address is confirmed. Sign in to continue.")
PROFILE_SAVED = N_("Your name has been saved.")
PASSWORD_CHANGED = N_("Your password has been changed. Your other sessions have ended.")
EMAIL_CHANGE_SENT = N_(
    "We have sent a link to %(email)s. Your address changes when you open it; "
    "until then you sign in with %(current)s."
)
