"""CORS for the endpoints browser apps call across origins (token, userinfo, revocation,
discovery, JWKS): the origins of the public clients' redirect URIs, read when a request carries an
Origin, and BACKEND_CORS_ORIGINS. Credentials (cookies) are never allowed."""

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.crud.clients import public_client_origins
from app.db import get_engine
from app.oauth.discovery import JWKS_PATH, REVOCATION_PATH, TOKEN_PATH, USERINFO_PATH

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


def _allowed(origin: str, configured: frozenset[str]) -> bool:
    if origin in configured:
        return True
    with Session(get_engine()) as session:
        return origin in public_client_origins(session)


class OAuthCorsMiddleware:
    """For the requests to OAUTH_CORS_PATHS that carry an Origin header (api/middleware.py
    CrossOrigin sends only those here)."""

    def __init__(self, app: ASGIApp, *, configured_origins: list[str]) -> None:
        self.app = app
        self.configured = frozenset(configured_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        origin_bytes = headers.get(b"origin")
        if origin_bytes is None:
            await self.app(scope, receive, send)
            return
        origin = origin_bytes.decode("latin-1")
        allowed = await run_in_threadpool(_allowed, origin, self.configured)
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
