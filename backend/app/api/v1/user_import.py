"""POST /users/import (`users:import`): bring users from another system, as `manage import
users` does (EVENTS.md, "Bringing users from another system"; app/imports)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlmodel import Session

from app.api.deps import ActorDep, SessionDep, require
from app.api.errors import Responses
from app.core.permissions import Permission
from app.crud.audit import Actor
from app.errors import ContentTooLarge, Invalid, UnsupportedMediaType
from app.imports import firebase
from app.imports.lines import LineResult
from app.imports.run import NotJsonLines, TooManyLines, body_items, import_items
from app.steps import run_step

router = APIRouter(prefix="/users", tags=["users"])

MAX_LINES = 10_000
# 10,000 lines of up to ~1.6 KB (a Firebase hash with its parameters, roles, organizations):
# this route takes more than MAX_BODY_BYTES (main.py gives the edge this limit for it).
MAX_BODY_BYTES = 16 * 1024 * 1024


class ImportResults(BaseModel):
    results: list[LineResult]


RESPONSES: Responses = {
    401: {"description": "Not authenticated"},
    403: {"description": "Forbidden: needs users:import (admin)"},
    413: {"description": "More than 10,000 users, or a body over 16 MiB"},
    415: {"description": "Neither application/x-ndjson nor application/json"},
    422: {"description": "Not JSON Lines (nor a JSON array), or a bad firebase_scrypt header"},
}
BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }
}


@router.post(
    "/import",
    response_model=ImportResults,
    response_model_exclude_none=True,
    responses=RESPONSES,
    openapi_extra=BODY,
    dependencies=[Depends(require(Permission.USERS_IMPORT))],
)
async def import_users(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    update: Annotated[bool, Query(description="Update users found again (`--update`)")] = False,
    dry_run: Annotated[bool, Query(description="Check every line, write nothing")] = False,
) -> ImportResults:
    """Each line `{email, full_name?, role?, is_verified?, is_active?, password?,
    password_hash?, mfa_totp_secret?, roles?, organizations?, external_id?, created_at?}`;
    each answered `created`, `updated`, `skipped` or `error` with its reason."""
    body = await request.body()
    try:
        items = body_items(body, request.headers.get("content-type", ""), max_lines=MAX_LINES)
    except NotJsonLines as error:
        raise Invalid(f"Not JSON Lines: {error}") from None
    except TooManyLines as error:
        raise ContentTooLarge(str(error)) from None
    except ValueError as error:
        raise UnsupportedMediaType(str(error)) from None
    try:
        results = await run_step(_import, session, items, actor, update=update, dry_run=dry_run)
    except firebase.FirebaseError as error:
        raise Invalid(str(error)) from None
    return ImportResults(results=results)


def _import(
    session: Session, items: list[tuple[int, Any]], actor: Actor, *, update: bool, dry_run: bool
) -> list[LineResult]:
    return list(import_items(session, items, actor=actor, update=update, dry_run=dry_run))
