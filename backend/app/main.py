"""create_app(): routers, middleware, exception handlers, lifespan."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig

from app import jobs, reads
from app.api import docs, errors, oauth, ops
from app.api.middleware import EdgeMiddleware
from app.api.v1 import (
    account,
    assignments,
    audit,
    auth,
    authz_check,
    clients,
    me,
    organizations,
    passkeys,
    resources,
    user_import,
    users,
)
from app.core import i18n, keys, password_policy, passwords
from app.core.config import SettingsError, get_settings
from app.core.logging import configure as configure_logging
from app.web import account as web_account
from app.web import brand as web_brand
from app.web import console as web_console
from app.web import language as web_language
from app.web import login as web_login
from app.web import logout as web_logout
from app.web import pages as web_pages
from app.web import routes as web_routes

logger = logging.getLogger(__name__)


def _load_signing_keys() -> None:
    """The OIDC key ring, read before the first request (which would otherwise wait for it).
    A bad key file is answered 503 where a key is needed, as before (manage serve refuses
    it once a client exists)."""
    try:
        keys.reload()
    except SettingsError as error:
        logger.warning("OpenID Connect signing keys not loaded: %s", error)


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    passwords.warm_up()
    password_policy.warm_up()
    _load_signing_keys()
    background = jobs.server_scheduler(get_settings())
    if background is not None:
        background.start()
    yield  # manage serve then tunes its worker processes (app/serving.py)
    if background is not None:
        await background.stop()
    reads.close_readers()
    await reads.close_async_reads()


NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app() -> FastAPI:
    settings = get_settings()
    keys.key_set()  # a bad JWT key file stops start-up here, with one line
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    i18n.load()  # the catalogs, compiled once: a broken one stops start-up here
    web_brand.load()
    app = FastAPI(
        title=settings.PROJECT_NAME,
        version=settings.VERSION,
        openapi_url=f"{settings.API_V1_STR}/openapi.json",
        docs_url=None,  # served by docs.install, with local assets
        redoc_url=None,
        lifespan=lifespan,
        telemetry=None if settings.OPENTELEMETRY else NO_TELEMETRY,
        responses=errors.COMMON_RESPONSES,
    )
    # The edge wraps everything, so every answer has an id; it hands the requests that carry
    # an Origin header to the CORS rules (api/middleware.py CrossOrigin).
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=settings.MAX_BODY_BYTES,
        body_limits={f"{settings.API_V1_STR}/users/import": user_import.MAX_BODY_BYTES},
        hsts_seconds=settings.HSTS_SECONDS,
        metrics_enabled=settings.METRICS_ENABLED,
        access_log=settings.ACCESS_LOG,
        cors_origins=settings.BACKEND_CORS_ORIGINS,
    )
    errors.install(app)
    oauth.install(app)
    # Requests are matched against the routers in this order, one route at a time, so a
    # route behind many others pays for trying each of them first (bench/README.md,
    # introspection): the most frequent come first. GET /users/me, on every page of a
    # client; then the OAuth endpoints (introspection and userinfo on every request a
    # resource server serves).
    app.include_router(users.me_router, prefix=settings.API_V1_STR)
    app.include_router(oauth.router)
    app.include_router(users.router, prefix=settings.API_V1_STR)
    routers = (me.router, auth.router, account.router, passkeys.router)
    authorization = (resources.router, assignments.router, authz_check.router, organizations.router)
    for router in (*routers, audit.router, clients.router, *authorization, user_import.router):
        app.include_router(router, prefix=settings.API_V1_STR)
    app.include_router(ops.router)
    app.include_router(web_routes.router)
    app.include_router(web_login.router)
    app.include_router(web_logout.router)
    app.include_router(web_language.router)
    app.include_router(web_brand.router)
    web_pages.install(app)
    web_console.install(app)
    web_account.install(app)
    app.mount("/oauth/static", StaticFiles(directory=web_pages.STATIC_DIR), name="oauth-static")
    docs.install(app)
    return app


app = create_app()
