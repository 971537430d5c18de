"""The admin console at /admin: users, sessions, roles, the audit log and OAuth clients, in
server-rendered pages behind the hosted login (CONSOLE.md)."""

from fastapi import APIRouter, FastAPI

from app.web.console import audit, clients, signin, users

router = APIRouter(include_in_schema=False)
for module in (users, audit, clients, signin):
    router.include_router(module.router)


def install(app: FastAPI) -> None:
    app.include_router(router)
