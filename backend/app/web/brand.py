"""The hosted pages' branding (ACCOUNT.md, "Branding"): the name, the logo and the primary
colour of the settings (BRAND_*, checked at start by app/core/config.py).

The colour reaches the pages as a served stylesheet of CSS variables (the pages' CSP allows
no inline style), with the text colour on it, white or black, whichever contrasts more
(WCAG 2: at least 4.58:1 for any colour, above AA's 4.5:1)."""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import Response

from app.core.config import get_settings, logo_type

router = APIRouter(prefix="/oauth/brand", include_in_schema=False)

STYLE_PATH = "/oauth/brand/style.css"
LOGO_PATH = "/oauth/brand/logo"
DEFAULT_PRIMARY = "#2457c5"
WHITE, BLACK = "#ffffff", "#000000"
# A logo opened by itself (not as an <img>) runs nothing: an SVG is a document.
LOGO_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


@dataclass(frozen=True, slots=True)
class Brand:
    """What the templates show: `brand.name`, `brand.logo_url` (None: the name instead)."""

    name: str
    logo_url: str | None
    style_url: str = STYLE_PATH


def current() -> Brand:
    settings = get_settings()
    return Brand(
        name=settings.brand_name,
        logo_url=LOGO_PATH if settings.BRAND_LOGO_FILE is not None else None,
    )


def _linear(channel: int) -> float:
    value = channel / 255
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


def luminance(color: str) -> float:
    """WCAG 2 relative luminance of #rrggbb."""
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _linear(red) + 0.7152 * _linear(green) + 0.0722 * _linear(blue)


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def text_on(color: str) -> str:
    """White or black: whichever reads better on `color`."""
    return WHITE if contrast(color, WHITE) >= contrast(color, BLACK) else BLACK


@cache
def stylesheet(primary: str) -> str:
    return f":root {{ --brand-primary: {primary}; --brand-on-primary: {text_on(primary)}; }}\n"


@cache
def _logo(path: Path) -> tuple[bytes, str]:
    media_type = logo_type(path)
    return path.read_bytes(), media_type


def load() -> None:
    """Read the logo at start (the settings checked it), so no request reads the disk."""
    path = get_settings().BRAND_LOGO_FILE
    if path is not None:
        _logo(path)


@router.get("/style.css")
def brand_style() -> Response:
    css = stylesheet(get_settings().BRAND_PRIMARY_COLOR or DEFAULT_PRIMARY)
    return Response(css, media_type="text/css")


@router.get("/logo")
def brand_logo() -> Response:
    path = get_settings().BRAND_LOGO_FILE
    if path is None:
        return Response(status_code=404)
    content, media_type = _logo(path)
    return Response(content, media_type=media_type, headers={"Content-Security-Policy": LOGO_CSP})
