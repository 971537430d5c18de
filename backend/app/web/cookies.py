"""The hosted pages' cookies: the browser session (single sign-on) and the CSRF binding.

HttpOnly, SameSite=Lax, Secure outside development, `__Host-` prefixed when the service is
served over https (PUBLIC_URL)."""

import hashlib
import hmac
import secrets

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


def read_cookie(request: Request, base: str) -> str | None:
    value = request.cookies.get(cookie_name(base))
    return value if value and len(value) <= 256 else None


# --- CSRF: a random cookie, and in each form an HMAC of it under SECRET_KEY -------------


def _csrf_mac(binding: str) -> str:
    key = (get_settings().SECRET_KEY or "").encode()
    return hmac.new(key, b"csrf:" + binding.encode(), hashlib.sha256).hexdigest()


def csrf_binding(request: Request) -> tuple[str, bool]:
    """The browser's CSRF cookie value, and whether it is new (to be set on the answer)."""
    existing = read_cookie(request, CSRF_COOKIE)
    if existing:
        return existing, False
    return secrets.token_urlsafe(24), True


def csrf_token(binding: str) -> str:
    return _csrf_mac(binding)


def csrf_valid(request: Request, presented: str | None) -> bool:
    binding = read_cookie(request, CSRF_COOKIE)
    if not binding or not presented:
        return False
    return hmac.compare_digest(_csrf_mac(binding), presented)
