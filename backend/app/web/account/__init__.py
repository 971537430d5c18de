"""The hosted account pages under /account (ACCOUNT.md): one router per group of pages,
each on the shell of rendering.py (headers, navigation) and access.py (the signed-in
person, CSRF-checked forms)."""

from fastapi import APIRouter, FastAPI

from app.web.account import (
    apps,
    credentials,
    deletion,
    export,
    invitation,
    mfa,
    organizations,
    overview,
    passkeys,
    profile,
    recovery,
    sessions,
    signin,
    signup,
    verification,
)

router = APIRouter(include_in_schema=False)
for module in (
    overview,
    profile,
    credentials,
    signin,
    signup,
    recovery,
    verification,
    sessions,
    apps,
    organizations,
    mfa,
    passkeys,
    export,
    deletion,
    invitation,
):
    router.include_router(module.router)


def install(app: FastAPI) -> None:
    app.include_router(router)
