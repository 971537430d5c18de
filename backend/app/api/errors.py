"""The one place where domain errors become HTTP answers."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from app import errors

logger = logging.getLogger(__name__)

STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidToken: 401,
    errors.InvalidCredentials: 401,
    errors.MfaFailed: 401,
    errors.BadToken: 400,
    errors.IncorrectPassword: 400,
    errors.InvalidCode: 400,
    errors.MfaNotStarted: 400,
    errors.EmailNotVerified: 403,
    errors.InactiveUser: 403,
    errors.Forbidden: 403,
    errors.RegistrationClosed: 403,
    errors.NotFound: 404,
    errors.EmailTaken: 409,
    errors.LastAdmin: 409,
    errors.Conflict: 409,
    errors.RateLimited: 429,
    errors.ServiceUnavailable: 503,
}


def _status(error: errors.DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


async def domain_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, errors.DomainError)
    status = _status(error)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, errors.RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse({"detail": error.detail}, status_code=status, headers=headers)


async def database_unavailable(_request: Request, error: Exception) -> JSONResponse:
    logger.error("database unavailable: %s", type(error).__name__)
    return JSONResponse(
        {"detail": "Service temporarily unavailable"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def method_not_allowed(request: Request, error: Exception) -> Response:
    """405 whose Allow header lists every method of the path, not only the first route's."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code != 405:
        return await http_exception_handler(request, error)
    allowed: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE:
            allowed |= route.methods or set()
    return JSONResponse(
        {"detail": error.detail},
        status_code=405,
        headers={"Allow": ", ".join(sorted(allowed))},
    )


# Answers any operation may give, documented once for the whole API.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed request body"},
    413: {"description": "Request body too large"},
    503: {"description": "A dependency (database) is unavailable; retry later"},
}


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.DomainError, domain_error)
    app.add_exception_handler(StarletteHTTPException, method_not_allowed)
    for exc in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(exc, database_unavailable)
