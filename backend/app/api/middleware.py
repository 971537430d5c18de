"""The one pure ASGI layer every HTTP request passes: size limits (URL, headers, body), the
request id, security headers, metrics and the access line; CORS for the requests that carry
an Origin header.

One layer, not five: each layer costs a call and a `send` wrapper on every request, and this
service sits in front of every request of its users' products."""

import json
import logging
import random
import re
import time
from functools import lru_cache

from fastapi import HTTPException
from prometheus_client import Counter, Histogram
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.oauth_cors import OAUTH_CORS_PATHS, OAuthCorsMiddleware
from app.core import metrics
from app.core.logging import request_id

access_log = logging.getLogger("app.access")
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc", "/static-docs")
MAX_URL_BYTES = 8 * 1024  # path and query string together
MAX_HEADER_BYTES = 32 * 1024  # every header name and value together

Headers = tuple[tuple[bytes, bytes], ...]


def security_headers(*, docs: bool, hsts_seconds: int, vary_origin: bool) -> Headers:
    """The hardening headers of every answer (a route's own value of one of them wins);
    API answers are not stored unless a route chose its own caching. With CORS on, answers
    vary by Origin (see CrossOriginMiddleware)."""
    headers = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", DOCS_CSP if docs else API_CSP),
        ("cross-origin-opener-policy", "same-origin"),
    ]
    if hsts_seconds:
        headers.append(("strict-transport-security", f"max-age={hsts_seconds}; includeSubDomains"))
    if not docs:
        headers.append(("cache-control", "no-store"))
    if vary_origin:
        headers.append(("vary", "Origin"))
    return tuple((name.encode(), value.encode()) for name, value in headers)


class EdgeMiddleware:
    """414 for a URL over MAX_URL_BYTES, 431 for headers over MAX_HEADER_BYTES (httptools
    takes headers of any length), 413 for a body over `max_body_bytes` (by Content-Length at
    once, or while it streams in); X-Request-ID taken (or made) and sent back; security
    headers; the request metrics, and an access line if asked for (ACCESS_LOG)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_limits: dict[str, int] | None = None,
        hsts_seconds: int,
        metrics_enabled: bool,
        access_log: bool,
        cors_origins: list[str],
    ) -> None:
        self.app = app
        self.cross_origin = CrossOrigin(app, origins=cors_origins)
        vary_origin = bool(cors_origins)
        self.max_body_bytes = max_body_bytes
        self.body_limits = body_limits or {}  # paths that take more (a users import)
        self.metrics_enabled = metrics_enabled
        self.access_log = access_log
        self.api_headers = security_headers(
            docs=False, hsts_seconds=hsts_seconds, vary_origin=vary_origin
        )
        self.docs_headers = security_headers(
            docs=True, hsts_seconds=hsts_seconds, vary_origin=vary_origin
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = b""
        header_bytes = 0
        declared_too_large = False
        limit = self.body_limits.get(scope["path"], self.max_body_bytes)
        inner = self.app
        for key, value in scope["headers"]:
            header_bytes += len(key) + len(value)
            if key == b"x-request-id":
                incoming = value
            elif key == b"content-length":
                declared_too_large = not value.isdigit() or int(value) > limit
            elif key == b"origin":
                inner = self.cross_origin
        rid = incoming.decode("latin-1")
        if not REQUEST_ID_PATTERN.fullmatch(rid):
            # A correlation id, not a secret (clients may send their own): 128 random bits
            # without a getrandom() system call per request.
            rid = f"{random.getrandbits(128):032x}"
        token = request_id.set(rid)
        defaults = self.docs_headers if scope["path"].startswith(DOCS_PATHS) else self.api_headers
        extra = ((b"x-request-id", rid.encode()), *defaults)
        status = 500
        start = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in extra if header[0] not in present)
                message["headers"] = headers
            await send(message)

        try:
            url_bytes = len(scope.get("raw_path") or scope["path"]) + len(scope["query_string"])
            if url_bytes > MAX_URL_BYTES:
                await _refuse(send_with_headers, 414, "Request URL too long")
            elif header_bytes > MAX_HEADER_BYTES:
                await _refuse(send_with_headers, 431, "Request header fields too large")
            elif declared_too_large:
                await _refuse(send_with_headers, 413, "Request body too large")
            else:
                await inner(scope, self._limited(receive, limit), send_with_headers)
        finally:
            elapsed = time.perf_counter() - start
            self._record(scope, status, elapsed)
            request_id.reset(token)

    def _limited(self, receive: Receive, limit: int) -> Receive:
        """`receive`, refusing a body (413) as soon as it passes `limit` while it streams."""
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, "Request body too large")
            return message

        return limited_receive

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        method = scope["method"]
        route = getattr(scope.get("route"), "path", "<unmatched>")
        if self.metrics_enabled:
            requests, latency = _route_metrics(method, route, status)
            requests.inc()
            latency.observe(elapsed)
        if self.access_log and access_log.isEnabledFor(logging.INFO):
            duration_ms = elapsed * 1000
            access_log.info(
                "%s %s %s %.1fms",
                method,
                route,
                status,
                duration_ms,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration_ms, 2),
                },
            )


class CrossOrigin:
    """CORS, for the requests that carry an Origin header: EdgeMiddleware sends only those
    here, so the others (servers, apps, curl: most of an auth service's traffic) pass no CORS
    code at all; EdgeMiddleware adds their `Vary: Origin`. The OAuth endpoints that browser
    apps call have rules of their own (api/oauth_cors.py); the API has Starlette's, for
    BACKEND_CORS_ORIGINS (none configured: no CORS headers)."""

    def __init__(self, app: ASGIApp, *, origins: list[str]) -> None:
        self.oauth = OAuthCorsMiddleware(app, configured_origins=origins)
        self.api: ASGIApp = app
        if origins:
            self.api = CORSMiddleware(
                app,
                allow_origins=origins,
                allow_credentials=False,  # bearer tokens, not cookies
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                expose_headers=["X-Request-ID", "Retry-After"],
                max_age=600,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] in OAUTH_CORS_PATHS:
            await self.oauth(scope, receive, send)
        else:
            await self.api(scope, receive, send)


@lru_cache(maxsize=4096)
def _route_metrics(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    """The labelled series of one (method, route, status), looked up once, not per request."""
    requests = metrics.REQUESTS.labels(method, route, str(status))
    return requests, metrics.LATENCY.labels(method, route)


async def _refuse(send: Send, status: int, detail: str) -> None:
    """Answer without reading the request any further, and close the connection."""
    body = json.dumps({"detail": detail}, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
