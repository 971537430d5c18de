"""Branding (ACCOUNT.md): BRAND_NAME, BRAND_LOGO_FILE and BRAND_PRIMARY_COLOR, checked at
start, on every hosted page (and the name in mails), the colour through a served stylesheet
with readable button text."""

import itertools
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import MAX_LOGO_BYTES, PNG_SIGNATURE, Settings, get_settings
from app.web import brand
from app.web.pages import PAGE_CSP
from tests.test_oidc_authorize import authorize_url
from tests.test_recovery import recover
from tests.test_settings import IMPORT_APP, one_line, start
from tests.utils.mailbox import Mailbox
from tests.utils.oidc import browser, make_client

pytestmark = pytest.mark.usefixtures("oidc_issuer")

SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>\n'
PNG = PNG_SIGNATURE + b"\x00\x00\x00\rIHDR" + bytes(17)


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """The test environment, run from an empty directory (so no `.env` is read)."""
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def settings_of(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, SECRET_KEY_FILE=tmp_path / "key", **values)  # type: ignore[call-arg, arg-type]


def refusal(environ: pytest.MonkeyPatch, name: str, value: str) -> str:
    environ.setenv(name, value)
    with pytest.raises(SystemExit) as refused:
        get_settings.__wrapped__()
    message = str(refused.value.code)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("value", ["red", "#12345", "#ggg", "2457c5", "#2457c5 ", "#1234567"])
def test_a_bad_colour_refuses_to_start_naming_it(
    environ: pytest.MonkeyPatch,
    value: str,
) -> None:
    message = refusal(environ, "BRAND_PRIMARY_COLOR", value)
    assert message.startswith("Invalid setting BRAND_PRIMARY_COLOR:")
    assert "is not a CSS hex colour (#rgb or #rrggbb)" in message


def test_the_process_refuses_to_start_with_a_bad_colour(tmp_path: Path) -> None:
    line = one_line(start(IMPORT_APP, tmp_path, BRAND_PRIMARY_COLOR="blue"))
    assert line == (
        "Invalid setting BRAND_PRIMARY_COLOR: 'blue' is not a CSS hex colour (#rgb or #rrggbb)"
    )


def test_colours_are_kept_as_rrggbb(tmp_path: Path) -> None:
    def color(value: str) -> str | None:
        return settings_of(tmp_path, BRAND_PRIMARY_COLOR=value).BRAND_PRIMARY_COLOR

    assert color("#ABC") == "#aabbcc"
    assert color("#0F172A") == "#0f172a"
    assert color("") is None


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("logo.png", None, "No such file or directory"),
        ("logo.png", b"<svg/>", "is not a PNG (.png) or SVG (.svg) image"),
        ("logo.svg", PNG, "is not a PNG (.png) or SVG (.svg) image"),
        ("logo.gif", b"GIF89a", "is not a PNG (.png) or SVG (.svg) image"),
        ("logo.svg", b"<html>no svg here</html>", "is not a PNG (.png) or SVG (.svg) image"),
        ("logo.svg", b"<svg><script>alert(1)</script></svg>", "holds a script"),
        ("logo.png", PNG + bytes(MAX_LOGO_BYTES), "is larger than 512 KiB"),
        ("folder.svg", "dir", "is not a file"),
    ],
)
def test_a_bad_logo_refuses_to_start_naming_it(
    environ: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    content: bytes | str | None,
    problem: str,
) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    message = refusal(environ, "BRAND_LOGO_FILE", str(path))
    assert message.startswith(f"Invalid setting BRAND_LOGO_FILE: {path}")
    assert problem in message


def test_a_png_or_svg_logo_is_accepted(tmp_path: Path) -> None:
    for name, content in (("logo.png", PNG), ("logo.SVG", b"\xef\xbb\xbf" + SVG)):
        (tmp_path / name).write_bytes(content)
        assert (tmp_path / name) == settings_of(
            tmp_path, BRAND_LOGO_FILE=tmp_path / name
        ).BRAND_LOGO_FILE


def test_every_colour_gets_button_text_of_aa_contrast() -> None:
    steps = ("00", "33", "66", "77", "88", "99", "cc", "ff")
    for red, green, blue in itertools.product(steps, repeat=3):
        color = f"#{red}{green}{blue}"
        assert brand.contrast(color, brand.text_on(color)) >= 4.5, color
    assert brand.text_on("#ffd500") == brand.BLACK  # yellow: black text
    assert brand.text_on("#0f172a") == brand.WHITE  # navy: white text
    assert brand.text_on(brand.DEFAULT_PRIMARY) == brand.WHITE
    assert round(brand.contrast("#000000", "#ffffff"), 2) == 21.0


def test_the_colour_reaches_the_pages_as_a_stylesheet(
    client: TestClient, db: Session, settings: Callable[..., Settings]
) -> None:
    default = client.get("/oauth/brand/style.css")
    assert default.headers["content-type"].startswith("text/css")
    assert "--brand-primary: #2457c5; --brand-on-primary: #ffffff;" in default.text
    settings(BRAND_PRIMARY_COLOR="#ffd500")
    css = client.get("/oauth/brand/style.css").text
    assert "--brand-primary: #ffd500; --brand-on-primary: #000000;" in css
    page = browser(client).get(authorize_url(make_client(db).client_id))
    assert '<link rel="stylesheet" href="/oauth/brand/style.css">' in page.text
    assert page.headers["content-security-policy"] == PAGE_CSP  # no inline style needed
    assert "style=" not in page.text
    static = client.get("/oauth/static/style.css").text
    assert "background: var(--brand-primary, #2457c5)" in static
    assert "color: var(--brand-on-primary, #fff)" in static


def test_the_name_and_logo_are_on_every_page(
    client: TestClient, db: Session, settings: Callable[..., Settings], tmp_path: Path
) -> None:
    logo = tmp_path / "acme.svg"
    logo.write_bytes(SVG)
    settings(BRAND_NAME="Acme Accounts", BRAND_LOGO_FILE=logo)
    page = browser(client).get(authorize_url(make_client(db).client_id))
    assert "<title>Sign in · Acme Accounts</title>" in page.text
    assert '<h1><img class="logo" src="/oauth/brand/logo" alt="Acme Accounts"></h1>' in page.text
    served = client.get("/oauth/brand/logo")
    assert served.status_code == 200 and served.content == SVG
    assert served.headers["content-type"] == "image/svg+xml"
    # Opened by itself, an SVG is a document: it runs nothing.
    assert "sandbox" in served.headers["content-security-policy"]
    assert served.headers["x-content-type-options"] == "nosniff"
    logged_out = client.get("/oauth/logout")
    assert re.search(r"<title>[^<]+ · Acme Accounts</title>", logged_out.text)


def test_without_a_logo_the_name_stands_and_the_logo_url_is_404(
    client: TestClient, db: Session
) -> None:
    page = browser(client).get(authorize_url(make_client(db).client_id))
    assert "<h1>FastAPI JWT Auth</h1>" in page.text
    assert client.get("/oauth/brand/logo").status_code == 404


def test_the_png_logo_is_served_as_png(
    client: TestClient, settings: Callable[..., Settings], tmp_path: Path
) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    settings(BRAND_LOGO_FILE=logo)
    served = client.get("/oauth/brand/logo")
    assert served.headers["content-type"] == "image/png" and served.content == PNG


def test_mails_carry_the_brand_name(
    client: TestClient, mailbox: Mailbox, user_factory: Callable[..., object],
    settings: Callable[..., Settings],
) -> None:  # fmt: skip
    settings(BRAND_NAME="Acme Accounts")
    account = user_factory(email="brand@example.com")
    recover(client, "brand@example.com")
    message = mailbox.last_to("brand@example.com")
    assert message["Subject"] == "Acme Accounts: reset your password"
    assert message["From"].startswith("Acme Accounts <")
    assert account is not None
