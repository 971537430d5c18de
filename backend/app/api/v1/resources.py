"""/resources and /roles: the product's API resources and roles (admins: `authz:manage`)."""

import uuid
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query, status
from pydantic import AfterValidator

from app.api.deps import ActorDep, SessionDep, require
from app.core.permissions import Permission
from app.crud import authz
from app.db import transaction
from app.models.authz import (
    ResourceCreate,
    ResourceRead,
    ResourceUpdate,
    RoleCreate,
    RoleRead,
    RoleUpdate,
)
from app.models.common import CursorPage, PageCursor, parse_cursor

ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing, invalid or revoked credentials"},
    403: {"description": "Not allowed (or the built-in resource)"},
    404: {"description": "No such resource or role"},
    409: {"description": "The identifier or name is taken"},
}
router = APIRouter(
    tags=["authorization"],
    dependencies=[Depends(require(Permission.AUTHZ_MANAGE))],
    responses=ERRORS,
)
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[
    str | None,
    Query(max_length=64, description="A page's `next_cursor`: the page after it"),
    AfterValidator(parse_cursor),
]


@router.post("/resources", status_code=status.HTTP_201_CREATED, response_model=ResourceRead)
def create_resource(body: ResourceCreate, session: SessionDep, actor: ActorDep) -> ResourceRead:
    return transaction(authz.create_resource, session, body=body, actor=actor)


@router.get("/resources", response_model=CursorPage[ResourceRead])
def list_resources(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> CursorPage[ResourceRead]:
    after = cast(PageCursor | None, cursor)
    return transaction(authz.list_resources, session, limit=limit, after=after)


@router.get("/resources/{resource_id}", response_model=ResourceRead)
def get_resource(resource_id: uuid.UUID, session: SessionDep) -> ResourceRead:
    return transaction(authz.get_resource, session, resource_id)


@router.patch("/resources/{resource_id}", response_model=ResourceRead)
def update_resource(
    resource_id: uuid.UUID, body: ResourceUpdate, session: SessionDep, actor: ActorDep
) -> ResourceRead:
    """Rename it, or replace its permissions (one left out leaves every role that held it)."""
    return transaction(
        authz.update_resource, session, resource_id=resource_id, body=body, actor=actor
    )


@router.delete("/resources/{resource_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_resource(resource_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> None:
    transaction(authz.delete_resource, session, resource_id=resource_id, actor=actor)


@router.post("/roles", status_code=status.HTTP_201_CREATED, response_model=RoleRead)
def create_role(body: RoleCreate, session: SessionDep, actor: ActorDep) -> RoleRead:
    return transaction(authz.create_role, session, body=body, actor=actor)


@router.get("/roles", response_model=CursorPage[RoleRead])
def list_roles(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> CursorPage[RoleRead]:
    after = cast(PageCursor | None, cursor)
    return transaction(authz.list_roles, session, limit=limit, after=after)


@router.get("/roles/{role_id}", response_model=RoleRead)
def get_role(role_id: uuid.UUID, session: SessionDep) -> RoleRead:
    return transaction(lambda s: authz.role_read(s, authz.get_role(s, role_id)), session)


@router.patch("/roles/{role_id}", response_model=RoleRead)
def update_role(
    role_id: uuid.UUID, body: RoleUpdate, session: SessionDep, actor: ActorDep
) -> RoleRead:
    return transaction(authz.update_role, session, role_id=role_id, body=body, actor=actor)


@router.delete("/roles/{role_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_role(role_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> None:
    """Delete the role and every assignment of it."""
    transaction(authz.delete_role, session, role_id=role_id, actor=actor)
