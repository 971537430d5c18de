"""CSRF for every form of the hosted pages and the console: the one place for it.

The browser holds a random binding cookie; each form carries an HMAC of it under
SECRET_KEY, scoped to a purpose and, for the console, to the browser session (a new sign-in
gets a new token). A post is accepted only with the token of this browser's own binding."""

import hashlib
import hmac
import secrets
import uuid

from starlette.requests import Request
from starlette.responses import Response

from app.core.config import get_settings
from app.web.cookies import CSRF_COOKIE, read_cookie, set_cookie

MAX_AGE_S = 12 * 3600  # the binding cookie's life: a form left open longer is refused once
MAX_TOKEN_LENGTH = 128


def _mac(binding: str, session_id: uuid.UUID | None) -> str:
    key = (get_settings().SECRET_KEY or "").encode()
    scope = f"console:{session_id}" if session_id else "pages"
    return hmac.new(key, f"csrf:{scope}:{binding}".encode(), hashlib.sha256).hexdigest()


def form_token(request: Request, *, session_id: uuid.UUID | None = None) -> tuple[str, str | None]:
    """The token for a form on a page answering `request`, and the binding to set as a cookie
    on that answer when the browser has none yet (see `bind`)."""
    existing = read_cookie(request, CSRF_COOKIE)
    binding = existing or secrets.token_urlsafe(24)
    return _mac(binding, session_id), None if existing else binding


def bind(response: Response, new_binding: str | None) -> None:
    if new_binding is not None:
        set_cookie(response, CSRF_COOKIE, new_binding, max_age=MAX_AGE_S)


def valid(request: Request, presented: str | None, *, session_id: uuid.UUID | None = None) -> bool:
    binding = read_cookie(request, CSRF_COOKIE)
    if not binding or not presented or len(presented) > MAX_TOKEN_LENGTH:
        return False
    return hmac.compare_digest(_mac(binding, session_id), presented)
