"""A user's permissions by the API's names (a resource identifier, an organization id or
slug): GET /users/{id}/permissions and POST /authz/check."""

import uuid
from collections.abc import Sequence

from sqlmodel import Session

from app.core.permissions import ROLE_PERMISSIONS, Role
from app.crud import authz, organizations
from app.errors import NotFound
from app.models.authz import BUILTIN_RESOURCE_ID, Check
from app.models.user import User


def permissions_of(
    session: Session, *, user_id: uuid.UUID, resource: str, organization: str | None
) -> list[str]:
    """user_permissions by the API's names: a resource identifier, an organization id or slug
    (each unknown: 404)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    resource_id = authz.resource_id_of(session, resource)
    if resource_id is None:
        raise NotFound("Resource not found")
    organization_id = None
    if organization is not None:
        found = organizations.find(session, organization)
        if found is None:
            raise NotFound("Organization not found")
        organization_id = found.id
    if not user.is_active:
        return []
    held = authz.user_permissions(
        session, user_id=user_id, resource_id=resource_id, organization_id=organization_id
    )
    if resource_id == BUILTIN_RESOURCE_ID:  # the matrix's follow the user's role
        held = sorted({*held, *ROLE_PERMISSIONS[Role(user.role)]})
    return held


def check_all(session: Session, checks: Sequence[Check]) -> list[bool]:
    """Does each user hold each permission now? Unknown users, resources and organizations
    hold nothing; each distinct (user, resource, organization) is read once."""
    held: dict[tuple[uuid.UUID, str, str | None], set[str]] = {}
    results = []
    for check in checks:
        key = (check.user_id, check.resource, check.organization)
        if key not in held:
            try:
                held[key] = set(
                    permissions_of(
                        session,
                        user_id=check.user_id,
                        resource=check.resource,
                        organization=check.organization,
                    )
                )
            except NotFound:
                held[key] = set()
        results.append(check.permission in held[key])
    return results
