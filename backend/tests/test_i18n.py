"""The languages of the hosted pages (ACCOUNT.md, "Language"): every message translated in
every catalog, the choice ui_locales > lang cookie > Accept-Language > English, `<html
lang>`, the fallback to English, and the language menu's route."""

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core import i18n
from app.core.config import Settings
from app.models.user import User
from app.web.flow import EXPIRED_FORM
from app.web.pages import templates, translations
from tests.test_oidc_authorize import authorize_url
from tests.utils import PASSWORD
from tests.utils.oidc import ISSUER, browser, form_fields, make_client, submit_login

pytestmark = pytest.mark.usefixtures("oidc_issuer")

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = ("de", "fr", "es")
HTML_LANG = re.compile(r'<html lang="([a-z]+)">')


def extracted() -> dict[str | tuple[str, ...], list[tuple[str, int]]]:
    """Every message id of the code and the templates, as `pybabel extract -F babel.cfg`
    finds them, with where."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[str | tuple[str, ...], list[tuple[str, int]]] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map
    ):
        found.setdefault(message, []).append((filename, line))
    return found


def catalog(locale: str) -> Catalog:
    path = i18n.LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def filled(value: str | tuple[str, ...] | list[str] | None) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return bool(value) and all(isinstance(part, str) and part.strip() for part in value or ())


# --- the catalogs --------------------------------------------------------------------------


def test_every_message_of_the_code_and_templates_is_extracted_and_in_the_template() -> None:
    messages = extracted()
    assert "Sign in" in messages and "Incorrect email or password" in messages
    with (i18n.LOCALE_DIR / "messages.pot").open("rb") as handle:
        template = {message.id for message in read_po(handle) if message.id}
    # The committed .pot is the extraction's (docs/account.md: how to update it).
    assert set(messages) == template, "run the update command of docs/account.md"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_message_has_a_translation_with_the_same_placeholders(locale: str) -> None:
    po = catalog(locale)
    assert str(po.locale) == locale
    untranslated = []
    for msgid, places in extracted().items():
        message = po.get(msgid)
        if message is None or message.fuzzy or not filled(message.string):
            untranslated.append((msgid, places[0]))
    assert untranslated == []
    problems = [(message.id, errors) for message, errors in po.check() if errors]
    assert problems == []  # python-format: the translation has the English text's values


def test_the_english_catalog_is_complete_and_translates_nothing() -> None:
    po = catalog("en")
    for msgid in extracted():
        message = po.get(msgid)
        assert message is not None, msgid
        if isinstance(msgid, tuple):
            assert message.string in (("", ""), list(msgid), msgid), msgid
        else:
            assert message.string in ("", msgid), msgid


def test_translations_are_compiled_once_and_translate() -> None:
    assert i18n.catalog("de") is i18n.catalog("de")
    assert i18n.translate("de", "Sign in") == "Anmelden"
    assert i18n.translate("fr", "Sign in") == "Se connecter"
    assert i18n.translate("es", "Sign in") == "Iniciar sesión"
    assert i18n.translate("en", "Sign in") == "Sign in"
    needs = i18n.N_("Password must be at least %(minimum)s characters", minimum=12)
    assert needs == "Password must be at least 12 characters"  # the API's text
    assert i18n.translate("de", needs) == "Das Passwort muss mindestens 12 Zeichen lang sein"


def test_plural_forms_follow_each_language() -> None:
    one, many = "Open this link within %(num)d hour:", "Open this link within %(num)d hours:"
    assert i18n.translate_plural("de", one, many, 1) == (
        "Öffnen Sie diesen Link innerhalb von 1 Stunde:"
    )
    assert i18n.translate_plural("de", one, many, 48).endswith("48 Stunden:")
    assert i18n.translate_plural("fr", one, many, 0).endswith("0 heure\u00a0:")  # 0 is one
    assert i18n.translate_plural("es", one, many, 2).endswith("2 horas:")
    assert i18n.translate_plural("en", one, many, 1) == "Open this link within 1 hour:"


def test_dates_are_written_as_each_language_writes_them() -> None:
    moment = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
    assert i18n.format_date("de", moment) == "04.03.2026"
    assert i18n.format_date("en", moment) == "Mar 4, 2026"
    assert "mars" in i18n.format_date("fr", moment)
    assert "15:30" in i18n.format_datetime("es", moment)


def test_templates_translate_with_values_escaped_and_plural_forms() -> None:
    """What the hosted pages' templates may say: _() with values, {% trans %} blocks (their
    whitespace collapsed, as babel.cfg extracts them) and {% pluralize %}."""
    source = (
        "{{ _('Signed in as %(email)s', email=who) }}|"
        "{% trans email=who %}\n  Signed in as {{ email }}\n{% endtrans %}|"
        "{% trans num=hours %}Open this link within {{ num }} hour:{% pluralize %}"
        "Open this link within {{ num }} hours:{% endtrans %}|{{ _(made_in_python) }}|"
        "{{ ngettext('Open this link within %(num)d hour:', 'Open this link within %(num)d"
        " hours:', hours) }}"
    )
    template = templates.from_string(source)
    values = {"who": "<b>eve</b>", "made_in_python": EXPIRED_FORM}
    german = template.render(**translations("de"), hours=1, **values).split("|")
    assert german[0] == german[1] == "Angemeldet als &lt;b&gt;eve&lt;/b&gt;"
    # A block's values are %(name)s: this one is no message of the catalogs, so English.
    assert german[2] == "Open this link within 1 hour:"
    assert german[3].startswith("Dieses Formular ist abgelaufen.")
    assert german[4] == "Öffnen Sie diesen Link innerhalb von 1 Stunde:"
    spanish = template.render(**translations("es"), hours=3, **values).split("|")
    assert spanish[2] == "Open this link within 3 hours:"
    assert spanish[4] == "Abre este enlace en menos de 3 horas:"
    english = template.render(hours=2, **values).split("|")  # no locale: the console's
    assert english[1] == "Signed in as &lt;b&gt;eve&lt;/b&gt;"
    assert english[2] == "Open this link within 2 hours:"


def test_a_translation_whose_placeholders_do_not_fit_falls_back_to_english(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = i18n.catalog("de")
    monkeypatch.setattr(broken, "gettext", lambda _msgid: "Angemeldet als %(mail)s")
    text = translations("de")["gettext"]("Signed in as %(email)s", email="a@b.c")
    assert text == "Signed in as a@b.c"
    assert i18n.translate("de", i18n.N_("Signed in as %(email)s", email="a@b.c")) == text


@pytest.fixture
def partial_german(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A German catalog that translates only "Sign in"."""
    po = Catalog(locale="de")
    po.add("Sign in", "Anmelden")
    po.add("Password", "")  # present, untranslated
    (tmp_path / "de" / "LC_MESSAGES").mkdir(parents=True)
    with (tmp_path / "de" / "LC_MESSAGES" / "messages.po").open("wb") as handle:
        write_po(handle, po)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.catalog.cache_clear()
    yield
    monkeypatch.undo()
    i18n.catalog.cache_clear()
    i18n.load()


@pytest.mark.usefixtures("partial_german")
def test_a_missing_translation_shows_in_english_never_as_an_id(
    client: TestClient, db: Session
) -> None:
    assert i18n.translate("de", "Password") == "Password"
    assert i18n.translate("de", "Use another account") == "Use another account"
    registered = make_client(db)
    page = browser(client).get(
        authorize_url(registered.client_id), headers={"Accept-Language": "de"}
    )
    assert HTML_LANG.search(page.text)[1] == "de"  # type: ignore[index]
    assert '<button type="submit">Anmelden</button>' in page.text
    assert '<label for="password">Password</label>' in page.text


# --- choosing the language -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de", "de"),
        ("de-CH, en;q=0.8", "de"),
        ("en-US,en;q=0.9,fr;q=0.8", "en"),
        ("ja, fr-CA;q=0.5", "fr"),
        ("fr;q=0.2, es;q=0.9", "es"),  # by quality, not by order
        ("es;q=0, de;q=0.1", "de"),  # q=0: not this one
        ("ES-mx", "es"),
        ("ja, zh", None),
        ("*", None),
        ("de;q=abc, fr", "fr"),
        ("", None),
        (None, None),
        ("x" * 5000, None),
    ],
)
def test_accept_language_is_read_by_quality(header: str | None, expected: str | None) -> None:
    assert i18n.from_accept_language(header) == expected


def test_discovery_names_the_languages(client: TestClient) -> None:
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["ui_locales_supported"] == ["en", "de", "fr", "es"]


def test_ui_locales_takes_the_first_supported_tag() -> None:
    assert i18n.from_ui_locales("ja fr-CA de") == "fr"
    assert i18n.from_ui_locales("ja") is None
    assert i18n.from_ui_locales(None) is None


def page_lang(client: TestClient, url: str, *, cookie: str | None, accept: str | None) -> str:
    headers = {"Accept-Language": accept} if accept else {}
    if cookie:
        headers["Cookie"] = f"__Host-lang={cookie}"
    page = browser(client).get(url, headers=headers)
    assert page.status_code == 200, page.text
    lang = HTML_LANG.search(page.text)
    assert lang is not None
    assert page.headers["content-language"] == lang[1]
    return lang[1]


def test_the_language_is_ui_locales_then_the_cookie_then_accept_language_then_english(
    client: TestClient, db: Session
) -> None:
    registered = make_client(db)
    asking = authorize_url(registered.client_id, ui_locales="ja fr")
    plain = authorize_url(registered.client_id)
    assert page_lang(client, asking, cookie="de", accept="es") == "fr"
    assert page_lang(client, plain, cookie="de", accept="es") == "de"
    assert page_lang(client, plain, cookie="xx", accept="es") == "es"  # a bad cookie: skipped
    assert page_lang(client, plain, cookie=None, accept="es, de;q=0.5") == "es"
    assert page_lang(client, plain, cookie=None, accept="ja") == "en"
    assert page_lang(client, plain, cookie=None, accept=None) == "en"
    assert page_lang(client, authorize_url(registered.client_id, ui_locales="ja"),
                     cookie=None, accept="de") == "de"  # fmt: skip


def test_the_login_page_and_its_answers_speak_the_request_language(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=False)
    b = browser(client)
    page = b.get(authorize_url(registered.client_id, ui_locales="de"))
    assert "<h2>Melden Sie sich an, um zu Example App zu gelangen</h2>" in page.text
    assert '<label for="email">E-Mail-Adresse</label>' in page.text
    assert "<title>Anmelden · FastAPI JWT Auth</title>" in page.text
    wrong = submit_login(b, page, user.email, "wrong-password")
    assert wrong.status_code == 400
    assert "E-Mail-Adresse oder Passwort ist falsch" in wrong.text  # a domain error's detail
    consent = submit_login(b, page, user.email, PASSWORD)
    assert consent.status_code == 200, consent.text
    assert HTML_LANG.search(consent.text)[1] == "de"  # type: ignore[index]
    assert f"Angemeldet als {user.email}" in consent.text
    assert "<h2>Example App möchte:</h2>" in consent.text
    assert "<li>Wissen, wer Sie sind</li>" in consent.text  # a scope's description
    assert '<button type="submit" name="action" value="deny" class="secondary">Ablehnen' in (
        consent.text
    )


def test_a_message_made_in_python_is_shown_translated_and_escaped(client: TestClient) -> None:
    b = browser(client)
    answer = b.post(
        "/oauth/authorize/login",
        data={"csrf_token": "forged", "request": ""},
        headers={"Accept-Language": "fr"},
    )
    assert answer.status_code == 403
    assert i18n.translate("fr", EXPIRED_FORM) in answer.text
    assert "Ce formulaire a expiré." in answer.text
    page = b.get("/oauth/authorize?client_id=%3Cb%3E&redirect_uri=x", headers={
        "Accept-Language": "es"})  # fmt: skip
    assert page.status_code == 400 and "Cliente desconocido." in page.text


def test_the_logout_pages_speak_ui_locales(client: TestClient) -> None:
    page = browser(client).get("/oauth/logout?ui_locales=es", headers={"Accept-Language": "de"})
    assert '<html lang="es">' in page.text and "No has iniciado sesión" in page.text


# --- the language menu ---------------------------------------------------------------------


def menu(html: str) -> dict[str, str]:
    return {
        code: href.replace("&amp;", "&")
        for href, code in re.findall(r'<a href="([^"]+)" hreflang="([a-z]+)"', html)
    }


def test_every_page_has_a_menu_that_sets_the_cookie_and_comes_back(
    client: TestClient, db: Session
) -> None:
    registered = make_client(db)
    b = browser(client)
    url = authorize_url(registered.client_id, ui_locales="fr")
    page = b.get(url)
    links = menu(page.text)
    assert set(links) == set(i18n.LOCALES)
    assert 'aria-current="true">Français</a>' in page.text
    chosen = b.get(links["de"])
    assert chosen.status_code == 303
    assert "__Host-lang=de" in chosen.headers["set-cookie"]
    back = chosen.headers["location"]
    # Back to the same authorization request, whose ui_locales now says the menu's choice.
    assert back.startswith("/oauth/authorize?") and "ui_locales=de" in back
    assert "ui_locales=fr" not in back
    again = b.get(back)
    assert '<html lang="de">' in again.text
    assert '<html lang="de">' in b.get(authorize_url(registered.client_id)).text  # the cookie


def test_the_menu_of_a_form_answer_comes_back_to_its_authorization_request(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db)
    b = browser(client)
    page = b.get(authorize_url(registered.client_id))
    wrong = submit_login(b, page, user.email, "wrong-password")
    target = menu(wrong.text)["es"]
    assert "next=%2Foauth%2Fauthorize%3F" in target
    answer = b.get(target)
    assert answer.headers["location"] == "/oauth/authorize?" + form_fields(page.text)["request"]


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "",
    ],
)
def test_the_language_route_refuses_to_leave_the_service(client: TestClient, target: str) -> None:
    b = browser(client)
    answer = b.get("/lang", params={"to": "de", "next": target})
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert "lang=" not in answer.headers.get("set-cookie", "")


def test_the_language_route_refuses_an_unknown_language(client: TestClient) -> None:
    answer = browser(client).get("/lang", params={"to": "xx", "next": "/oauth/logout"})
    assert answer.status_code == 400 and "This language is not available." in answer.text


def test_the_language_route_keeps_a_local_path_and_its_query(client: TestClient) -> None:
    answer = browser(client).get("/lang", params={"to": "es", "next": "/oauth/logout?state=a"})
    assert answer.status_code == 303 and answer.headers["location"] == "/oauth/logout?state=a"


def test_the_lang_cookie_is_set_like_the_other_cookies(
    client: TestClient, settings: Callable[..., Settings]
) -> None:
    settings(PUBLIC_URL="http://localhost:8000")
    answer = browser(client).get("/lang", params={"to": "fr", "next": "/"})
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("lang=fr;") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert ISSUER.startswith("https://")  # the other tests' https issuer: __Host-lang
