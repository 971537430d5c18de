"""The admin console at /admin: users, sessions, roles, the audit log, OAuth clients and the
product's authorization (resources, roles, organizations), in server-rendered pages behind
the hosted login (CONSOLE.md, AUTHZ.md)."""

from fastapi import APIRouter, FastAPI

from app.web.console import (
    audit,
    client,
    clients,
    organization_members,
    organizations,
    resources,
    roles,
    signin,
    users,
)

router = APIRouter(include_in_schema=False)
for module in (
    users,
    audit,
    clients,
    client,
    resources,
    roles,
    organizations,
    organization_members,
    signin,
):
    router.include_router(module.router)


def install(app: FastAPI) -> None:
    app.include_router(router)
