"""The one place where domain errors become HTTP answers."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from app import errors

logger = logging.getLogger(__name__)
RETRY_UNAVAILABLE_S = "5"  # Retry-After of a 503: a dependency is away, try again soon

STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidToken: 401,
    errors.InvalidCredentials: 401,
    errors.MfaFailed: 401,
    errors.PasskeyLoginFailed: 401,
    errors.BadRequest: 400,
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
    if isinstance(error, errors.InsufficientScope):
        headers["WWW-Authenticate"] = (
            f'Bearer error="insufficient_scope", scope="{error.scope}"'  # names: no quote
        )
    if isinstance(error, errors.RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    if status == 503:
        headers["Retry-After"] = RETRY_UNAVAILABLE_S
    return JSONResponse({"detail": error.detail}, status_code=status, headers=headers)


async def database_unavailable(_request: Request, error: Exception) -> JSONResponse:
    logger.error("database unavailable: %s", type(error).__name__)
    return JSONResponse(
        {"detail": "Service temporarily unavailable"},
        status_code=503,
        headers={"Retry-After": RETRY_UNAVAILABLE_S},
    )


async def unstorable_value(_request: Request, error: Exception) -> JSONResponse:
    """A value the database refuses (a NUL character in PostgreSQL text, a number out of its
    range) is the request's fault: 400, never a 500."""
    logger.warning("database refused a value: %s", type(getattr(error, "orig", error)).__name__)
    return JSONResponse({"detail": "The request holds a value that cannot be stored"}, 400)


async def invalid_request(_request: Request, error: Exception) -> JSONResponse:
    """422 in FastAPI's shape, minus each error's `input`: what was sent may be a password
    (or a whole body holding one). Text that cannot be encoded (lone surrogates) is replaced,
    so no input can turn the answer into a 500."""
    assert isinstance(error, RequestValidationError)
    details = [
        {key: value for key, value in item.items() if key != "input"} for item in error.errors()
    ]
    return JSONResponse({"detail": _encodable(jsonable_encoder(details))}, status_code=422)


def _encodable(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    if isinstance(value, dict):
        return {key: _encodable(item) for key, item in value.items()}
    return value


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


# The `responses` of an operation in OpenAPI, as FastAPI takes them.
Responses = dict[int | str, dict[str, Any]]

# Answers any operation may give, documented once for the whole API.
COMMON_RESPONSES: Responses = {
    400: {"description": "Malformed request body, or a value that cannot be stored"},
    413: {"description": "Request body too large"},
    503: {"description": "The database (or Redis, if rate limits fail closed) is unavailable"},
}


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.DomainError, domain_error)
    app.add_exception_handler(StarletteHTTPException, method_not_allowed)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(DataError, unstorable_value)
    for exc in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(exc, database_unavailable)
