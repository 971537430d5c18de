"""Where the hosted sign-in goes on once the person is signed in: the pending authorization
request of a client, or a page of the person's account (a local `/account` path, never
another site). The one flow of the login page, its second factor and passkey steps, the
sign-up, the reset and the verification pages carries it in hidden form fields (`request`
or `next`), in the links between those pages, and, across a mailed link opened in the same
browser, in a signed cookie (`remember`/`recall`)."""

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from app.core.config import get_settings
from app.core.i18n import N_
from app.oauth import authorize
from app.oauth.authorize import AuthorizationRequest
from app.oauth.errors import BadAuthorizationRequest, RedirectedError
from app.web.cookies import clear_cookie, read_cookie, set_cookie

ACCOUNT = "/account"
MAX_PATH = 1024
MAX_PARAMS = 64
TOO_MANY_PARAMETERS = N_("The request has too many parameters.")
PENDING_COOKIE = "authsvc_pending"
MAX_COOKIE = 3600  # base64 of the longest request a browser keeps in one cookie, and the MAC


@dataclass(frozen=True, slots=True)
class Continuation:
    """The pending authorization request (`auth`, parsed from `query` at each step), or the
    local account page `path` when there is none."""

    query: str = ""
    auth: AuthorizationRequest | None = None
    path: str = ACCOUNT

    @property
    def fields(self) -> dict[str, str]:
        """What a form carries: `request` (the authorization request) or `next`."""
        return {"request": self.query} if self.auth is not None else {"next": self.path}

    @property
    def link_query(self) -> str:
        """The same, as the query string of a link between the hosted pages."""
        return urlencode(self.fields)

    @property
    def login_url(self) -> str:
        """The page that signs in and comes back here."""
        if self.auth is not None:
            return f"/oauth/authorize?{self.query}"
        return f"{ACCOUNT}/login?{urlencode({'next': self.path})}"

    @property
    def url(self) -> str:
        """Where a signed-in browser goes on: the authorization endpoint again, or the page."""
        return f"/oauth/authorize?{self.query}" if self.auth is not None else self.path


def local_path(value: str | None, *, under: str = ACCOUNT) -> str | None:
    """`value` if it is a path of this service at or below `under` (with its query), else
    None: never a scheme, a host (`//host`), a backslash, a control character or a dot
    segment, so a redirect to it stays here."""
    if not value or len(value) > MAX_PATH or "\\" in value or not value.isprintable():
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.fragment:
        return None
    path = unquote(parts.path)
    if not (path == under or path.startswith(under + "/")) or "\\" in path:
        return None
    if any(segment in (".", "..") for segment in path.split("/")):
        return None
    return value


def to_page(value: str | None) -> Continuation:
    """Back to the account page `value` if it is one (see `local_path`), else the overview."""
    return Continuation(path=local_path(value) or ACCOUNT)


def params(query: str) -> Mapping[str, Sequence[str]]:
    try:
        return parse_qs(query, keep_blank_values=True, max_num_fields=MAX_PARAMS)
    except ValueError:
        raise BadAuthorizationRequest(TOO_MANY_PARAMETERS) from None


def parse_request(session: Session, query: str) -> AuthorizationRequest:
    """The authorization request of `query`, validated again (oauth/authorize.py's rules)."""
    return authorize.parse_request(session, params(query))


def resolve(session: Session, *, request: str | None, next_path: str | None) -> Continuation:
    """The continuation a form or link names: its authorization request (validated again:
    BadAuthorizationRequest or RedirectedError when it no longer holds) if it has one, else
    its `next` path if local, else the account's overview."""
    if request:
        return Continuation(query=request, auth=parse_request(session, request))
    return to_page(next_path)


def resolve_or_account(session: Session, fields: Mapping[str, str]) -> Continuation:
    """As `resolve`, but a request that no longer holds (its client gone, say) goes on to the
    account instead."""
    try:
        return resolve(session, request=fields.get("request"), next_path=fields.get("next"))
    except (BadAuthorizationRequest, RedirectedError):
        return Continuation()


# --- across a mailed link, in the same browser ------------------------------------------------


def _mac(value: str) -> str:
    key = (get_settings().SECRET_KEY or "").encode()
    return hmac.new(key, f"pending:{value}".encode(), hashlib.sha256).hexdigest()


def remember(response: Response, continuation: Continuation, *, max_age: int) -> None:
    """Keep `continuation` in this browser while a mailed link is on its way (signed, so
    only this service's pages can have set it); a request too long for a cookie is not
    kept (the page then goes on to the account)."""
    encoded = base64.urlsafe_b64encode(json.dumps(continuation.fields).encode()).decode()
    value = f"{encoded}.{_mac(encoded)}"
    if len(value) <= MAX_COOKIE:
        set_cookie(response, PENDING_COOKIE, value, max_age=max_age)


def recall(request: Request) -> dict[str, str]:
    """The fields of the continuation this browser keeps (see `remember`), or none."""
    value = read_cookie(request, PENDING_COOKIE, max_length=MAX_COOKIE)
    encoded, _, mac = (value or "").rpartition(".")
    if not encoded or not hmac.compare_digest(_mac(encoded), mac):
        return {}
    try:
        fields = json.loads(base64.urlsafe_b64decode(encoded))
    except ValueError:
        return {}
    if not isinstance(fields, dict):
        return {}
    return {k: v for k, v in fields.items() if k in ("request", "next") and isinstance(v, str)}


def forget(response: Response) -> None:
    clear_cookie(response, PENDING_COOKIE)
