"""The hosted pages' cookies, their one set of settings: the browser session (single sign-on)
and the CSRF binding (web/csrf.py).

HttpOnly, SameSite=Lax, Secure outside development, `__Host-` prefixed when the service is
served over https (PUBLIC_URL)."""

from starlette.requests import Request
from starlette.responses import Response

from app.core.config import Environment, get_settings

SESSION_COOKIE = "authsvc_session"
CSRF_COOKIE = "authsvc_csrf"


def _https() -> bool:
    return get_settings().PUBLIC_URL.startswith("https://")


def cookie_name(base: str) -> str:
    return f"__Host-{base}" if _https() else base


def set_cookie(response: Response, base: str, value: str, *, max_age: int | None) -> None:
    secure = _https() or get_settings().ENVIRONMENT is not Environment.DEVELOPMENT
    response.set_cookie(
        cookie_name(base),
        value,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, base: str) -> None:
    set_cookie(response, base, "", max_age=0)


def read_cookie(request: Request, base: str, *, max_length: int = 256) -> str | None:
    value = request.cookies.get(cookie_name(base))
    return value if value and len(value) <= max_length else None
