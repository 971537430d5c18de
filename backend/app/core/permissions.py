"""Roles, permissions and the role -> permissions matrix: the only copy of these rules."""

from enum import StrEnum


class Role(StrEnum):
    USER = "user"
    MODERATOR = "moderator"
    ADMIN = "admin"


class Permission(StrEnum):
    USERS_READ = "users:read"  # list users, view other users
    USERS_UPDATE = "users:update"  # update other users, set is_active or a password
    USERS_SET_ROLE = "users:set_role"
    USERS_DELETE = "users:delete"
    USERS_UNLOCK = "users:unlock"
    AUDIT_READ = "audit:read"
    CLIENTS_MANAGE = "clients:manage"  # register, change and delete OAuth clients


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.USER: frozenset(),
    Role.MODERATOR: frozenset({Permission.USERS_READ}),
    Role.ADMIN: frozenset(Permission),
}

# Fields of a user that need more than being that user to change, and what they need.
PRIVILEGED_FIELDS: dict[str, Permission] = {
    "role": Permission.USERS_SET_ROLE,
    "is_active": Permission.USERS_UPDATE,
    "password": Permission.USERS_UPDATE,
}


def has_permission(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[Role(role)]


def can_read_user(role: Role, *, is_self: bool) -> bool:
    return is_self or has_permission(role, Permission.USERS_READ)


def can_update_user(role: Role, *, is_self: bool, fields: set[str]) -> bool:
    """Self may change its own profile fields; other users and privileged fields need more."""
    if not is_self and not has_permission(role, Permission.USERS_UPDATE):
        return False
    return all(
        has_permission(role, PRIVILEGED_FIELDS[f]) for f in fields & PRIVILEGED_FIELDS.keys()
    )
