"""The language menu's one route: `GET /lang?to=de&next=/same/page` sets the `lang` cookie
and goes back to `next`, a path on this service (never another site: no open redirect)."""

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from app.core import i18n
from app.core.i18n import N_
from app.web.cookies import set_cookie
from app.web.i18n import LANG_COOKIE, LANG_MAX_AGE, LANG_PATH, choose
from app.web.pages import error_page

router = APIRouter(include_in_schema=False)

MAX_NEXT = 4096
NOT_HERE = N_("This link does not lead to a page of this service.")
UNKNOWN_LANGUAGE = N_("This language is not available.")


def local_path(target: str) -> str | None:
    """`target` if it is a path on this service (`/…`), else None: no scheme, no host, no
    `//` or backslash (which browsers read as another host), no control character or space
    (which browsers strip: `/\\t/evil.example`)."""
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or len(target) > MAX_NEXT
        or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in target)
    ):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


@router.get(LANG_PATH)
def set_language(request: Request, to: str = "", next: str = "/") -> Response:
    locale = to if to in i18n.LOCALES else None
    target = local_path(next)
    if locale is None or target is None:
        choose(request)
        message = UNKNOWN_LANGUAGE if locale is None else NOT_HERE
        return error_page(request, message, heading=N_("This link cannot be followed"))
    request.state.locale = locale
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, LANG_COOKIE, locale, max_age=LANG_MAX_AGE)
    return response
