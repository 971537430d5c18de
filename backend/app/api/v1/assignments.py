"""Who holds which roles: a user's global roles, a confidential client's roles, and a
user's effective permissions on a resource (AUTHZ.md)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.api.deps import ActorDep, CallerDep, SessionDep, check_permission, require
from app.auth.tokens import Caller
from app.core.permissions import Permission
from app.crud import authz, permission_checks
from app.db import transaction
from app.models.authz import EffectivePermissions, RoleIds, RoleList

router = APIRouter(
    tags=["authorization"],
    responses={
        401: {"description": "Missing, invalid or revoked credentials"},
        403: {"description": "Not allowed"},
        404: {"description": "No such user, client or organization"},
        422: {"description": "An unknown role, or more than 50"},
    },
)
MANAGE = [Depends(require(Permission.AUTHZ_MANAGE))]


@router.get("/users/{user_id}/roles", response_model=RoleList, dependencies=MANAGE)
def get_user_roles(user_id: uuid.UUID, session: SessionDep) -> RoleList:
    return RoleList(roles=transaction(authz.user_roles, session, user_id))


@router.put("/users/{user_id}/roles", response_model=RoleList, dependencies=MANAGE)
def set_user_roles(
    user_id: uuid.UUID, body: RoleIds, session: SessionDep, actor: ActorDep
) -> RoleList:
    """Replace the user's global roles."""
    roles = transaction(
        authz.set_user_roles, session, user_id=user_id, role_ids=body.roles, actor=actor
    )
    return RoleList(roles=roles)


def _reader(user_id: uuid.UUID, caller: CallerDep) -> Caller:
    """The user themselves (`account`), or an admin (`authz:manage`)."""
    own = caller.user.id == user_id
    return check_permission(caller, Permission.ACCOUNT if own else Permission.AUTHZ_MANAGE)


@router.get(
    "/users/{user_id}/permissions",
    response_model=EffectivePermissions,
    dependencies=[Depends(_reader)],
)
def user_permissions(
    user_id: uuid.UUID,
    session: SessionDep,
    # an identifier is printable ASCII (models/authz.py): percent-encoded, it fits a URL
    resource: Annotated[str, Query(min_length=1, max_length=2048, pattern=r"^[\x21-\x7e]+$")],
    organization: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> EffectivePermissions:
    """The permissions the user holds on `resource` (an identifier) now, in `organization`
    (an id or a slug) or none: for admins, and for the user themselves."""
    permissions = transaction(
        permission_checks.permissions_of,
        session,
        user_id=user_id,
        resource=resource,
        organization=organization,
    )
    return EffectivePermissions(permissions=permissions)


@router.get("/clients/{client_id}/roles", response_model=RoleList, dependencies=MANAGE)
def get_client_roles(client_id: str, session: SessionDep) -> RoleList:
    return RoleList(roles=transaction(authz.client_roles, session, client_id))


@router.put("/clients/{client_id}/roles", response_model=RoleList, dependencies=MANAGE)
def set_client_roles(
    client_id: str, body: RoleIds, session: SessionDep, actor: ActorDep
) -> RoleList:
    """Replace a confidential client's roles (its client_credentials tokens' permissions)."""
    roles = transaction(
        authz.set_client_roles, session, client_id=client_id, role_ids=body.roles, actor=actor
    )
    return RoleList(roles=roles)
