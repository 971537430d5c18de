"""Roles, permissions and the role -> permissions matrix: the only copy of these rules."""

from enum import StrEnum

from app.core.i18n import N_


class Role(StrEnum):
    USER = "user"
    MODERATOR = "moderator"
    ADMIN = "admin"


class Permission(StrEnum):
    ACCOUNT = "account"  # the caller's own account: /users/me and below (every role)
    USERS_READ = "users:read"  # list users, view other users
    USERS_UPDATE = "users:update"  # update other users, set is_active or a password
    USERS_SET_ROLE = "users:set_role"
    USERS_DELETE = "users:delete"
    USERS_UNLOCK = "users:unlock"
    USERS_IMPORT = "users:import"  # bring users from another system, hashes and all
    AUDIT_READ = "audit:read"
    CLIENTS_MANAGE = "clients:manage"  # register, change and delete OAuth clients
    AUTHZ_MANAGE = "authz:manage"  # API resources, roles, organizations (AUTHZ.md)


class OrgPermission(StrEnum):
    """The built-in resource's organization permissions: held through roles assigned in an
    organization, for that organization only (AUTHZ.md, "Delegated administration")."""

    MEMBERS_READ = "org:members:read"
    MEMBERS_MANAGE = "org:members:manage"
    INVITATIONS_MANAGE = "org:invitations:manage"


# What each permission of the built-in resource lets a client do, as a consent page names it
# (AUTHZ.md: consent lists the permissions asked for by their descriptions).
PERMISSION_DESCRIPTIONS: dict[Permission | OrgPermission, str] = {
    Permission.ACCOUNT: N_(
        "Manage your account: profile, sessions, passkeys (not your credentials)"
    ),
    Permission.USERS_READ: N_("See every user's account"),
    Permission.USERS_UPDATE: N_("Change other users' accounts"),
    Permission.USERS_SET_ROLE: N_("Change users' roles"),
    Permission.USERS_DELETE: N_("Delete users"),
    Permission.USERS_UNLOCK: N_("Unlock locked-out accounts"),
    Permission.USERS_IMPORT: N_("Import users from another system"),
    Permission.AUDIT_READ: N_("Read the audit log"),
    Permission.CLIENTS_MANAGE: N_("Register, change and delete OAuth clients"),
    Permission.AUTHZ_MANAGE: N_("Manage API resources, roles and organizations"),
    OrgPermission.MEMBERS_READ: N_("See the members of your organization"),
    OrgPermission.MEMBERS_MANAGE: N_("Add, change and remove members of your organization"),
    OrgPermission.INVITATIONS_MANAGE: N_("Invite people to your organization"),
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.USER: frozenset({Permission.ACCOUNT}),
    Role.MODERATOR: frozenset({Permission.ACCOUNT, Permission.USERS_READ}),
    Role.ADMIN: frozenset(Permission),
}

# Fields of a user that need more than being that user to change, and what they need.
PRIVILEGED_FIELDS: dict[str, Permission] = {
    "role": Permission.USERS_SET_ROLE,
    "is_active": Permission.USERS_UPDATE,
    "password": Permission.USERS_UPDATE,
}


# An OAuth access token's scope, on the service's own API: it may do only what its scope
# names and the user's role holds (AUTHZ.md). None: a token of /auth/login, the role decides.
Scope = frozenset[str] | None


def has_permission(role: Role, permission: Permission, scope: Scope = None) -> bool:
    return permission in ROLE_PERMISSIONS[Role(role)] and (scope is None or permission in scope)


def can_read_user(role: Role, *, is_self: bool, scope: Scope = None) -> bool:
    return (is_self and has_permission(role, Permission.ACCOUNT, scope)) or has_permission(
        role, Permission.USERS_READ, scope
    )


def can_update_user(role: Role, *, is_self: bool, fields: set[str], scope: Scope = None) -> bool:
    """Self may change its own profile fields; other users and privileged fields need more."""
    if not (is_self and has_permission(role, Permission.ACCOUNT, scope)) and not has_permission(
        role, Permission.USERS_UPDATE, scope
    ):
        return False
    return all(
        has_permission(role, PRIVILEGED_FIELDS[f], scope) for f in fields & PRIVILEGED_FIELDS.keys()
    )


def needed_to_update(*, is_self: bool, fields: set[str]) -> set[Permission]:
    """The permissions an update asks for: what an OAuth token's scope must name."""
    base = Permission.ACCOUNT if is_self else Permission.USERS_UPDATE
    return {base, *(PRIVILEGED_FIELDS[f] for f in fields & PRIVILEGED_FIELDS.keys())}
