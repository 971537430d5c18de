"""API resources, roles and role assignments (AUTHZ.md): steps run by db.transaction, and the
one read of a holder's effective permissions.

The built-in resource (the service's own API) is not a row: `builtin_resource()` describes it
from the code, and roles hold its organization permissions under BUILTIN_RESOURCE_ID."""

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, union_all, update
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from app.core.permissions import (
    PERMISSION_DESCRIPTIONS,
    OrgPermission,
)
from app.crud import audit, sessions
from app.crud.audit import Actor
from app.crud.pages import keyset_page
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.models.authz import (
    BUILTIN_RESOURCE_ID,
    MAX_ROLES_PER_HOLDER,
    ApiPermission,
    ApiResource,
    ClientRole,
    PermissionOut,
    ProductRole,
    ResourceCreate,
    ResourceRead,
    ResourceUpdate,
    RoleCreate,
    RolePermission,
    RolePermissionRef,
    RoleRead,
    RoleRef,
    RoleUpdate,
    UserRole,
)
from app.models.client import OAuthClient
from app.models.common import CursorPage, PageCursor
from app.models.organization import Membership, MembershipRole
from app.models.user import User
from app.oauth.discovery import issuer

# A page of resources or roles: the built-in resource first, then rows in (created_at, id).


def builtin_resource() -> ResourceRead:
    """The service's own API (AUTHZ.md): its identifier is the issuer, its permissions the
    matrix's, `account`, and the organization permissions."""
    return ResourceRead(
        id=BUILTIN_RESOURCE_ID,
        identifier=issuer(),
        name="This service's API",
        builtin=True,
        permissions=[
            PermissionOut(name=str(name), description=text)
            for name, text in PERMISSION_DESCRIPTIONS.items()
        ],
        created_at=None,
    )


def resource_id_of(session: Session, identifier: str) -> uuid.UUID | None:
    """The id of the resource whose identifier this is (the issuer: the built-in one)."""
    if identifier == issuer():
        return BUILTIN_RESOURCE_ID
    return session.exec(
        select(ApiResource.id).where(col(ApiResource.identifier) == identifier)
    ).first()


def _resource_read(session: Session, resource: ApiResource) -> ResourceRead:
    permissions = session.exec(
        select(ApiPermission)
        .where(col(ApiPermission.resource_id) == resource.id)
        .order_by(col(ApiPermission.name))
    ).all()
    return ResourceRead(
        id=resource.id,
        identifier=resource.identifier,
        name=resource.name,
        permissions=[PermissionOut(name=p.name, description=p.description) for p in permissions],
        created_at=resource.created_at,
    )


def _custom_resource(session: Session, resource_id: uuid.UUID, *, change: bool) -> ApiResource:
    if resource_id == BUILTIN_RESOURCE_ID and change:
        raise Forbidden("The built-in resource cannot be changed or deleted")
    resource = session.get(ApiResource, resource_id)
    if resource is None:
        raise NotFound("Resource not found")
    return resource


def get_resource(session: Session, resource_id: uuid.UUID) -> ResourceRead:
    if resource_id == BUILTIN_RESOURCE_ID:
        return builtin_resource()
    return _resource_read(session, _custom_resource(session, resource_id, change=False))


def create_resource(session: Session, *, body: ResourceCreate, actor: Actor) -> ResourceRead:
    if resource_id_of(session, body.identifier) is not None:
        raise Conflict("A resource with this identifier exists")
    resource = ApiResource(identifier=body.identifier, name=body.name)
    session.add(resource)
    session.flush()
    session.add_all(
        ApiPermission(resource_id=resource.id, name=p.name, description=p.description)
        for p in body.permissions
    )
    audit.record(
        session,
        "authz.resource_created",
        actor=actor,
        resource_id=str(resource.id),
        identifier=resource.identifier,
        permissions=[p.name for p in body.permissions],
    )
    session.flush()
    return _resource_read(session, resource)


def update_resource(
    session: Session, *, resource_id: uuid.UUID, body: ResourceUpdate, actor: Actor
) -> ResourceRead:
    """Rename, and/or replace the permission list: a permission left out leaves every role."""
    resource = _custom_resource(session, resource_id, change=True)
    detail: dict[str, Any] = {}
    if body.name is not None and body.name != resource.name:
        resource.name = body.name
        session.add(resource)
        detail["name"] = body.name
    if body.permissions is not None:
        existing = {
            p.name: p
            for p in session.exec(
                select(ApiPermission).where(col(ApiPermission.resource_id) == resource.id)
            ).all()
        }
        wanted = {p.name: p.description for p in body.permissions}
        removed = sorted(existing.keys() - wanted.keys())
        if removed:
            session.exec(
                delete(ApiPermission).where(
                    col(ApiPermission.resource_id) == resource.id,
                    col(ApiPermission.name).in_(removed),
                )
            )
            session.exec(
                delete(RolePermission).where(
                    col(RolePermission.resource_id) == resource.id,
                    col(RolePermission.name).in_(removed),
                )
            )
        for name, description in wanted.items():
            row = existing.get(name)
            if row is None:
                session.add(
                    ApiPermission(resource_id=resource.id, name=name, description=description)
                )
            elif row.description != description:
                row.description = description
                session.add(row)
        detail["permissions_added"] = sorted(wanted.keys() - existing.keys())
        detail["permissions_removed"] = removed
    if detail:
        audit.record(
            session, "authz.resource_updated", actor=actor, resource_id=str(resource.id), **detail
        )
    session.flush()
    return _resource_read(session, resource)


def delete_resource(session: Session, *, resource_id: uuid.UUID, actor: Actor) -> None:
    resource = _custom_resource(session, resource_id, change=True)
    session.exec(delete(RolePermission).where(col(RolePermission.resource_id) == resource.id))
    audit.record(
        session,
        "authz.resource_deleted",
        actor=actor,
        resource_id=str(resource.id),
        identifier=resource.identifier,
    )
    session.delete(resource)


def list_resources(
    session: Session, *, limit: int, after: PageCursor | None
) -> CursorPage[ResourceRead]:
    rows, total, next_cursor = keyset_page(
        session, ApiResource, limit=limit - (after is None), after=after
    )
    items = [_resource_read(session, row) for row in rows]
    if after is None:
        items.insert(0, builtin_resource())
    return CursorPage(items=items, total=total + 1, skip=0, limit=limit, next_cursor=next_cursor)


# Roles


def _role_permissions(
    session: Session, refs: Iterable[RolePermissionRef]
) -> list[tuple[uuid.UUID, str]]:
    """(resource id, name) of each permission a role body names; one that does not exist, or
    one of the built-in resource that follows `role` only, is 422 naming it."""
    resolved: list[tuple[uuid.UUID, str]] = []
    resources: dict[str, uuid.UUID | None] = {}
    for ref in refs:
        if ref.resource not in resources:
            resources[ref.resource] = resource_id_of(session, ref.resource)
        resource_id = resources[ref.resource]
        if resource_id is None:
            raise Invalid(f"Unknown resource: {ref.resource}")
        if resource_id == BUILTIN_RESOURCE_ID:
            if ref.name not in OrgPermission.__members__.values():
                raise Invalid(
                    f"Permission {ref.name} of the built-in resource follows the user's role "
                    "and cannot be in a role"
                )
        elif not session.exec(
            select(ApiPermission.id).where(
                col(ApiPermission.resource_id) == resource_id, col(ApiPermission.name) == ref.name
            )
        ).first():
            raise Invalid(f"Unknown permission: {ref.name} of {ref.resource}")
        resolved.append((resource_id, ref.name))
    return resolved


def role_read(session: Session, role: ProductRole) -> RoleRead:
    rows = session.exec(
        select(RolePermission.resource_id, RolePermission.name, ApiResource.identifier)
        .join(ApiResource, col(ApiResource.id) == col(RolePermission.resource_id), isouter=True)
        .where(col(RolePermission.role_id) == role.id)
        .order_by(col(ApiResource.identifier), col(RolePermission.name))
    ).all()
    own = issuer()
    return RoleRead(
        id=role.id,
        name=role.name,
        description=role.description,
        permissions=[
            RolePermissionRef(resource=identifier or own, name=name)
            for resource_id, name, identifier in rows
            if identifier is not None or resource_id == BUILTIN_RESOURCE_ID
        ],
        created_at=role.created_at,
    )


def get_role(session: Session, role_id: uuid.UUID) -> ProductRole:
    role = session.get(ProductRole, role_id)
    if role is None:
        raise NotFound("Role not found")
    return role


def _ensure_name_free(session: Session, name: str, role_id: uuid.UUID | None = None) -> None:
    taken = session.exec(select(ProductRole.id).where(col(ProductRole.name) == name)).first()
    if taken is not None and taken != role_id:
        raise Conflict("A role with this name exists")


def create_role(session: Session, *, body: RoleCreate, actor: Actor) -> RoleRead:
    _ensure_name_free(session, body.name)
    permissions = _role_permissions(session, body.permissions)
    role = ProductRole(name=body.name, description=body.description)
    session.add(role)
    session.flush()
    session.add_all(
        RolePermission(role_id=role.id, resource_id=resource_id, name=name)
        for resource_id, name in permissions
    )
    audit.record(
        session,
        "authz.role_created",
        actor=actor,
        role_id=str(role.id),
        name=role.name,
        permissions=[f"{ref.resource} {ref.name}" for ref in body.permissions],
    )
    session.flush()
    return role_read(session, role)


def update_role(
    session: Session, *, role_id: uuid.UUID, body: RoleUpdate, actor: Actor
) -> RoleRead:
    role = get_role(session, role_id)
    detail: dict[str, Any] = {}
    if body.name is not None and body.name != role.name:
        _ensure_name_free(session, body.name, role.id)
        role.name = detail["name"] = body.name
    if body.description is not None and body.description != role.description:
        role.description = body.description
        detail["description"] = True
    if body.permissions is not None:
        permissions = _role_permissions(session, body.permissions)
        session.exec(delete(RolePermission).where(col(RolePermission.role_id) == role.id))
        session.add_all(
            RolePermission(role_id=role.id, resource_id=resource_id, name=name)
            for resource_id, name in permissions
        )
        detail["permissions"] = [f"{ref.resource} {ref.name}" for ref in body.permissions]
    session.add(role)
    if detail:
        audit.record(session, "authz.role_updated", actor=actor, role_id=str(role.id), **detail)
    session.flush()
    return role_read(session, role)


def delete_role(session: Session, *, role_id: uuid.UUID, actor: Actor) -> None:
    """Delete the role and every assignment of it (the foreign keys cascade)."""
    role = get_role(session, role_id)
    audit.record(session, "authz.role_deleted", actor=actor, role_id=str(role.id), name=role.name)
    # The OAuth sessions of those who held it in an organization end (AUTHZ.md, "Tokens").
    held_in = session.exec(
        select(Membership.organization_id, Membership.user_id)
        .join(MembershipRole, col(MembershipRole.membership_id) == col(Membership.id))
        .where(col(MembershipRole.role_id) == role.id)
    ).all()
    by_organization: dict[uuid.UUID, list[uuid.UUID]] = {}
    for organization_id, user_id in held_in:
        by_organization.setdefault(organization_id, []).append(user_id)
    for organization_id, user_ids in by_organization.items():
        for start in range(0, len(user_ids), 1000):  # bounded IN lists
            sessions.revoke_organization(
                session, organization_id, user_ids=user_ids[start : start + 1000]
            )
    for model in (RolePermission, UserRole, ClientRole, MembershipRole):
        session.exec(delete(model).where(col(model.role_id) == role.id))
    session.delete(role)


def list_roles(session: Session, *, limit: int, after: PageCursor | None) -> CursorPage[RoleRead]:
    rows, total, next_cursor = keyset_page(session, ProductRole, limit=limit, after=after)
    return CursorPage(
        items=[role_read(session, row) for row in rows],
        total=total,
        skip=0,
        limit=limit,
        next_cursor=next_cursor,
    )


# Assignments


def role_refs(session: Session, role_ids: Sequence[uuid.UUID]) -> list[RoleRef]:
    """{id, name} of each role, in name order; an unknown id is 422 naming it."""
    if not role_ids:
        return []
    if len(role_ids) > MAX_ROLES_PER_HOLDER:
        raise Invalid(f"At most {MAX_ROLES_PER_HOLDER} roles")
    found = {
        role.id: role
        for role in session.exec(select(ProductRole).where(col(ProductRole.id).in_(role_ids))).all()
    }
    for role_id in role_ids:
        if role_id not in found:
            raise Invalid(f"Unknown role: {role_id}")
    return sorted((RoleRef(id=r.id, name=r.name) for r in found.values()), key=lambda r: r.name)


def _lock(session: Session, model: Any, key: Any, value: Any) -> bool:
    """Take the holder's row lock before replacing its roles (FOR UPDATE on PostgreSQL; on
    SQLite, a no-op write takes the database's write lock), so two admins assigning at once
    leave one list or the other, never a mix. False if there is no such row."""
    if session.get_bind().dialect.name == "sqlite":
        changed = session.execute(update(model).where(key == value).values({key.key: value}))
        return bool(changed.rowcount == 1)  # type: ignore[attr-defined]
    locked = session.execute(select_columns(key).where(key == value).with_for_update())
    return locked.first() is not None


def user_roles(session: Session, user_id: uuid.UUID) -> list[RoleRef]:
    if session.get(User, user_id) is None:
        raise NotFound("User not found")
    rows = session.exec(
        select(ProductRole.id, ProductRole.name)
        .join(UserRole, col(UserRole.role_id) == col(ProductRole.id))
        .where(col(UserRole.user_id) == user_id)
        .order_by(col(ProductRole.name))
    ).all()
    return [RoleRef(id=role_id, name=name) for role_id, name in rows]


def set_user_roles(
    session: Session, *, user_id: uuid.UUID, role_ids: list[uuid.UUID], actor: Actor
) -> list[RoleRef]:
    """Replace the user's global roles."""
    if not _lock(session, User, col(User.id), user_id):
        raise NotFound("User not found")
    after = role_refs(session, role_ids)
    before = user_roles(session, user_id)
    session.exec(delete(UserRole).where(col(UserRole.user_id) == user_id))
    session.add_all(UserRole(user_id=user_id, role_id=ref.id) for ref in after)
    audit.record(
        session,
        "authz.roles_assigned",
        actor=actor,
        subject_id=user_id,
        before=[r.name for r in before],
        after=[r.name for r in after],
    )
    return after


def _confidential_client(session: Session, client_id: str) -> OAuthClient:
    client = session.get(OAuthClient, client_id) if len(client_id) <= 64 else None
    if client is None:
        raise NotFound("Client not found")
    if client.public:
        raise Invalid("Only a confidential client holds roles")
    return client


def client_roles(session: Session, client_id: str) -> list[RoleRef]:
    _confidential_client(session, client_id)
    rows = session.exec(
        select(ProductRole.id, ProductRole.name)
        .join(ClientRole, col(ClientRole.role_id) == col(ProductRole.id))
        .where(col(ClientRole.client_id) == client_id)
        .order_by(col(ProductRole.name))
    ).all()
    return [RoleRef(id=role_id, name=name) for role_id, name in rows]


def set_client_roles(
    session: Session, *, client_id: str, role_ids: list[uuid.UUID], actor: Actor
) -> list[RoleRef]:
    if not _lock(session, OAuthClient, col(OAuthClient.client_id), client_id):
        raise NotFound("Client not found")
    before = client_roles(session, client_id)
    after = role_refs(session, role_ids)
    session.exec(delete(ClientRole).where(col(ClientRole.client_id) == client_id))
    session.add_all(ClientRole(client_id=client_id, role_id=ref.id) for ref in after)
    audit.record(
        session,
        "authz.roles_assigned",
        actor=actor,
        client_id=client_id,
        before=[r.name for r in before],
        after=[r.name for r in after],
    )
    return after


# Effective permissions: one indexed read. Its statements are built once, here, and bound at
# each call: they run at every token request and check, and building one (a union in a
# subquery) costs several times what running it does (bench/README.md, "Authorization").


def _roles_held(*, in_organization: bool) -> Any:
    """The ids of the roles a user holds (bound: user_id, and organization_id): their global
    roles and, in an organization, their roles there while they are a member of it (a
    subquery with one column, role_id)."""
    held: Any = select_columns(col(UserRole.role_id).label("role_id")).where(
        col(UserRole.user_id) == bindparam("user_id")
    )
    if in_organization:
        held = union_all(
            held,
            select_columns(col(MembershipRole.role_id))
            .join(Membership, col(Membership.id) == col(MembershipRole.membership_id))
            .where(
                col(Membership.user_id) == bindparam("user_id"),
                col(Membership.organization_id) == bindparam("organization_id"),
            ),
        )
    return held.subquery()


def _names_on_resource(roles: Any) -> Any:
    """The names of the permissions on a resource (bound: resource_id) that `roles` hold."""
    return (
        select_columns(col(RolePermission.name))
        .join(roles, roles.c.role_id == col(RolePermission.role_id))
        .where(col(RolePermission.resource_id) == bindparam("resource_id"))
        .distinct()
        .order_by(col(RolePermission.name))
    )


def _role_names(roles: Any) -> Any:
    return (
        select_columns(col(ProductRole.name))
        .join(roles, roles.c.role_id == col(ProductRole.id))
        .distinct()
        .order_by(col(ProductRole.name))
    )


def _grants(roles: Any) -> Any:
    return (
        select_columns(col(RolePermission.resource_id), col(RolePermission.name))
        .join(roles, roles.c.role_id == col(RolePermission.role_id))
        .distinct()
    )


# {in an organization: statement}
USER_PERMISSIONS = {o: _names_on_resource(_roles_held(in_organization=o)) for o in (False, True)}
ROLE_NAMES = {o: _role_names(_roles_held(in_organization=o)) for o in (False, True)}
USER_GRANTS = _grants(_roles_held(in_organization=True))
CLIENT_PERMISSIONS = _names_on_resource(
    select_columns(col(ClientRole.role_id).label("role_id"))
    .where(col(ClientRole.client_id) == bindparam("client_id"))
    .subquery()
)


def _holder(user_id: uuid.UUID, organization_id: uuid.UUID | None) -> dict[str, Any]:
    params: dict[str, Any] = {"user_id": user_id}
    if organization_id is not None:
        params["organization_id"] = organization_id
    return params


def user_permissions(
    session: Session,
    *,
    user_id: uuid.UUID,
    resource_id: uuid.UUID,
    organization_id: uuid.UUID | None = None,
) -> list[str]:
    """The names of the permissions on `resource_id` the user's roles give them now (global,
    and in `organization`). One statement on primary keys and indexes, whatever the number
    of roles and organizations."""
    statement = USER_PERMISSIONS[organization_id is not None]
    params = _holder(user_id, organization_id) | {"resource_id": resource_id}
    return list(session.execute(statement, params).scalars())


def user_grants(
    session: Session, *, user_id: uuid.UUID, organization_id: uuid.UUID
) -> set[tuple[uuid.UUID, str]]:
    """Every (resource id, permission name) the user's roles give them in the organization."""
    rows = session.execute(USER_GRANTS, _holder(user_id, organization_id)).all()
    return {(resource_id, name) for resource_id, name in rows}


def client_permissions(session: Session, *, client_id: str, resource_id: uuid.UUID) -> list[str]:
    params = {"client_id": client_id, "resource_id": resource_id}
    return list(session.execute(CLIENT_PERMISSIONS, params).scalars())


def permission_descriptions(
    session: Session, *, resource_id: uuid.UUID, names: Sequence[str]
) -> dict[str, str]:
    """{name: description} of the named permissions of a resource that exist (the
    description, or the name when it has none)."""
    if resource_id == BUILTIN_RESOURCE_ID:
        known = {str(name): text for name, text in PERMISSION_DESCRIPTIONS.items()}
        return {name: known[name] for name in names if name in known}
    rows = session.exec(
        select(ApiPermission.name, ApiPermission.description).where(
            col(ApiPermission.resource_id) == resource_id, col(ApiPermission.name).in_(names)
        )
    ).all()
    return {name: description or name for name, description in rows}


def role_names(
    session: Session, *, user_id: uuid.UUID, organization_id: uuid.UUID | None
) -> list[str]:
    """The names of the product roles the user holds: global, and in the organization."""
    statement = ROLE_NAMES[organization_id is not None]
    return list(session.execute(statement, _holder(user_id, organization_id)).scalars())
