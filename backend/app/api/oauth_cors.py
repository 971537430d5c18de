"""CORS for the endpoints browser apps call across origins (token, userinfo, revocation,
discovery, JWKS): the origins of the public clients' redirect URIs, and BACKEND_CORS_ORIGINS.
Credentials (cookies) are never allowed."""

from sqlmodel import Session
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.crud import clients
from app.db import get_engine
from app.oauth.discovery import JWKS_PATH, REVOCATION_PATH, TOKEN_PATH, USERINFO_PATH
from app.steps import run_step

OAUTH_CORS_PATHS = frozenset(
    {
        TOKEN_PATH,
        USERINFO_PATH,
        REVOCATION_PATH,
        JWKS_PATH,
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    }
)
ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "Authorization, Content-Type"
MAX_AGE_S = "600"


def _read_origins() -> frozenset[str]:
    with Session(get_engine()) as session:
        return frozenset(clients.public_client_origins(session))


class PublicClientOrigins:
    """The public clients' origins, cached with the version of the client rows they were
    read at (models/client_version.py).

    Each request that needs them reads that version: one small read on the event loop
    (db.read_first), no worker thread. Only when it differs from the cached one (a client
    was created, changed or deleted, by this process or any other sharing the database) are
    the origins read again, in a worker thread. The version is read before the origins, so
    cached origins are never older than their version; two requests racing past a change
    both read the origins, and the next request still sees the newest version."""

    def __init__(self) -> None:
        self._cached: tuple[str | None, frozenset[str]] | None = None

    async def get(self) -> frozenset[str]:
        version = await clients.clients_version()
        cached = self._cached
        if cached is not None and cached[0] == version:
            return cached[1]
        origins = await run_step(_read_origins)
        self._cached = (version, origins)
        return origins


class OAuthCorsMiddleware:
    """For the requests to OAUTH_CORS_PATHS that carry an Origin header (api/middleware.py
    CrossOrigin sends only those here)."""

    def __init__(self, app: ASGIApp, *, configured_origins: list[str]) -> None:
        self.app = app
        self.configured = frozenset(configured_origins)
        self.public_client_origins = PublicClientOrigins()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        origin_bytes = headers.get(b"origin")
        if origin_bytes is None:
            await self.app(scope, receive, send)
            return
        origin = origin_bytes.decode("latin-1")
        allowed = origin in self.configured or origin in await self.public_client_origins.get()
        preflight = scope["method"] == "OPTIONS" and b"access-control-request-method" in headers
        if preflight:
            if not allowed:
                response = PlainTextResponse("Disallowed CORS origin", 400, {"Vary": "Origin"})
            else:
                response = PlainTextResponse(
                    "",
                    204,
                    {
                        "Access-Control-Allow-Origin": origin,
                        "Access-Control-Allow-Methods": ALLOW_METHODS,
                        "Access-Control-Allow-Headers": ALLOW_HEADERS,
                        "Access-Control-Max-Age": MAX_AGE_S,
                        "Vary": "Origin",
                    },
                )
            await response(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"vary", b"Origin")]
                if allowed:
                    extra.append((b"access-control-allow-origin", origin_bytes))
                    extra.append((b"access-control-expose-headers", b"WWW-Authenticate"))
                message["headers"] = [
                    *(h for h in message.get("headers", ()) if h[0].lower() != b"vary"),
                    *extra,
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)
