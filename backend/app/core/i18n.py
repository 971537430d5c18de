"""The languages of the hosted pages and of every mail: gettext catalogs and Babel.

The message ids are the English text, so English needs no catalog and a message missing
from a catalog shows in English, never as an id. The catalogs (`app/locales/<lang>/
LC_MESSAGES/messages.po`) are compiled in memory once, when the process starts (`load`),
never per request. Updating them: docs/account.md, "Translations".

A text produced in Python is marked with `N_` (for `pybabel extract`) and translated where
it is shown, by `translate(locale, text)`: the API answers the English text, a page or a
mail its translation. `N_("… %(name)s …", name=value)` carries its values along, so the
translated text gets them too."""

from collections.abc import Iterable
from datetime import date, datetime
from functools import cache
from gettext import GNUTranslations, NullTranslations
from io import BytesIO
from pathlib import Path
from typing import Any

from babel import Locale, negotiate_locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES = ("en", "de", "fr", "es")
DEFAULT_LOCALE = "en"
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locales"
DOMAIN = "messages"
MAX_ACCEPT_LANGUAGE = 1024  # characters of a header (or ui_locales) looked at
MAX_TAGS = 32  # language ranges of one header looked at


class Message(str):
    """A text with values (`N_(msgid, **values)`): the English text as a `str` (the API
    answers it as it is), and the message id and values to translate it again."""

    msgid: str
    values: dict[str, Any]

    def __new__(cls, msgid: str, values: dict[str, Any]) -> "Message":
        text = super().__new__(cls, msgid % values)
        text.msgid = msgid
        text.values = values
        return text


def N_(msgid: str, **values: Any) -> str:
    """Mark a text for extraction; translated later by `translate`."""
    return Message(msgid, values) if values else msgid


@cache
def catalog(locale: str) -> NullTranslations:
    """The compiled catalog of `locale`: read and compiled once, kept for the process."""
    if locale == DEFAULT_LOCALE or locale not in LOCALES:
        return NullTranslations()
    path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        po = read_po(handle, locale=locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, po)  # fuzzy entries are left out: English until reviewed
    compiled.seek(0)
    return GNUTranslations(compiled)


def load() -> None:
    """Compile every catalog now (at start-up): a broken catalog stops the start, and no
    request pays for it."""
    for locale in LOCALES:
        catalog(locale)


def translate(locale: str, text: str) -> str:
    """`text` (a message id, or a `Message`) in `locale`; English when it has no
    translation."""
    if isinstance(text, Message):
        return _filled(catalog(locale).gettext(text.msgid), text.msgid, text.values)
    return catalog(locale).gettext(text)


def translate_plural(locale: str, singular: str, plural: str, n: int, **values: Any) -> str:
    """The form for `n` (the language's plural rule) of singular/plural, with `num` = n and
    `values` filled in."""
    values = {"num": n, **values}
    english = singular if n == 1 else plural
    return _filled(catalog(locale).ngettext(singular, plural, n), english, values)


def _filled(translation: str, english: str, values: dict[str, Any]) -> str:
    """The translation with its values; the English text if the translation's placeholders
    do not fit (tests/test_i18n.py checks they do: this keeps a page from failing)."""
    try:
        return translation % values
    except (KeyError, ValueError, TypeError):
        return english % values


def supported(tag: str) -> str | None:
    """The supported locale of a language tag (`de-CH`, `fr_FR`, `ES`), or None."""
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LOCALES else None


def first_supported(tags: Iterable[str | None]) -> str | None:
    """The first supported locale among language tags (`ui_locales`, a cookie), or None."""
    for tag in tags:
        found = supported(tag) if tag else None
        if found:
            return found
    return None


def from_ui_locales(ui_locales: str | None) -> str | None:
    """OIDC Core 3.1.2.1: space-separated tags in order of preference."""
    return first_supported((ui_locales or "")[:MAX_ACCEPT_LANGUAGE].split()[:MAX_TAGS])


def from_accept_language(header: str | None) -> str | None:
    """RFC 9110 12.5.4: the ranges by quality (highest first, in order among equals; q=0
    means "not this one"), then Babel's negotiation (a region falls back to its language)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "")[:MAX_ACCEPT_LANGUAGE].split(",")[:MAX_TAGS]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        tag = tag.strip()
        if tag and tag != "*" and 0 < quality <= 1:
            ranked.append((-quality, position, tag.replace("_", "-")))
    preferred = [tag for _, _, tag in sorted(ranked)]
    found = negotiate_locale(preferred, LOCALES, sep="-")
    return supported(found) if found else None


def pick(*candidates: str | None) -> str:
    """The first of `candidates` that is a supported locale, else English."""
    return first_supported(candidates) or DEFAULT_LOCALE


@cache
def language_name(locale: str) -> str:
    """A language's own name for itself ("Deutsch"), for the language menu."""
    name = Locale.parse(locale).get_display_name(locale) or locale
    return name[:1].upper() + name[1:]


def format_datetime(locale: str, moment: datetime, width: str = "medium") -> str:
    """A date and time as written in `locale` (UTC, as the service keeps times)."""
    return babel_format_datetime(moment, width, tzinfo=moment.tzinfo, locale=locale)


def format_date(locale: str, day: date | datetime, width: str = "medium") -> str:
    return babel_format_date(day, width, locale=locale)
