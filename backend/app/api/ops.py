"""Operations endpoints, outside the API prefix: liveness, readiness, metrics, the JWKS."""

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security.utils import get_authorization_scheme_param
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from app.core import keys, ratelimit, security
from app.core.config import get_settings
from app.db import ping
from app.errors import InvalidToken
from app.steps import run_step

logger = logging.getLogger(__name__)
router = APIRouter(tags=["ops"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers. Touches nothing."""
    return {"status": "ok"}


@router.get("/health/ready", responses={503: {"description": "A dependency is unreachable"}})
async def ready() -> JSONResponse:
    """Readiness: the database answers, and Redis too when it is configured."""
    settings = get_settings()
    body = {"status": "ok", "database": "ok", "version": settings.VERSION}
    try:
        await run_step(ping)
    except SQLAlchemyError as error:
        logger.warning("readiness: database unreachable: %s", type(error).__name__)
        body.update(status="unavailable", database="unreachable")
    if settings.REDIS_URL:
        body["redis"] = "ok"
        if not await run_step(ratelimit.storage().check):
            logger.warning("readiness: redis unreachable")
            body.update(status="unavailable", redis="unreachable")
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format; 404 when METRICS_ENABLED is false. With METRICS_TOKEN set
    (production requires it) only a request bearing it gets them: 401 otherwise."""
    settings = get_settings()
    if not settings.METRICS_ENABLED:
        return Response(status_code=404)
    if settings.METRICS_TOKEN is not None:
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        matches = security.constant_time_equals(token, settings.METRICS_TOKEN)
        if scheme.lower() != "bearer" or not matches:
            raise InvalidToken("Not authenticated")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/.well-known/jwks.json")
def jwks(response: Response) -> dict[str, list[dict[str, str]]]:
    """The public keys that verify this service's tokens, by kid: the RS256/ES256 JWT keys
    and the OpenID Connect keys (ID tokens, OAuth access tokens): next, active, retired."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return {"keys": keys.published_jwks()}
