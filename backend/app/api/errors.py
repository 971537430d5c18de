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


async def domain_error(_request: Request, error: Exception) -> JSONResponse:
    """Every domain error's answer, as the error says it (status, headers, body)."""
    assert isinstance(error, errors.DomainError)
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers())


async def database_unavailable(_request: Request, error: Exception) -> JSONResponse:
    logger.error("database unavailable: %s", type(error).__name__)
    return JSONResponse(
        {"detail": "Service temporarily unavailable"},
        status_code=503,
        headers={"Retry-After": str(errors.RETRY_UNAVAILABLE_S)},
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
