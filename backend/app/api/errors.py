"""The one place where domain errors become HTTP answers."""

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import errors

logger = logging.getLogger(__name__)

STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidToken: 401,
    errors.InvalidCredentials: 401,
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


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.DomainError, domain_error)
    for exc in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(exc, database_unavailable)
