"""The admin console at /admin: users, sessions, roles, the audit log and OAuth clients, in
server-rendered pages behind the hosted login (CONSOLE.md)."""

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from app.web.console import audit, clients, signin, users
from app.web.console.access import ConsolePage

router = APIRouter(include_in_schema=False)
for module in (users, audit, clients, signin):
    router.include_router(module.router)


async def _page(_request: Request, error: Exception) -> Response:
    assert isinstance(error, ConsolePage)
    return error.response


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.add_exception_handler(ConsolePage, _page)
