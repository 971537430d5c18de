"""RFC 8707 resource indicators and organizations in OAuth requests (AUTHZ.md, "Tokens"):
which API resource a token is for, which scope values a request may carry, and what a token's
`scope` holds there (the OIDC scopes plus the asked-for permissions the holder has now)."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from app.crud import authz, organizations
from app.models.authz import NAME_PATTERN
from app.models.client import CLIENT_SCOPES, OAuthClient, Scope
from app.oauth.errors import InvalidScope, InvalidTarget

OIDC_SCOPES = frozenset(scope.value for scope in Scope)


@dataclass(frozen=True, slots=True)
class Target:
    """The API resource a request names (`resource`), as registered for its client."""

    identifier: str
    resource_id: uuid.UUID


def target(session: Session, client: OAuthClient, identifier: str | None) -> Target | None:
    """The resource `identifier` names (None: no `resource` given). One that does not exist,
    or that the client is not registered for, is invalid_target (RFC 8707 §2)."""
    if identifier is None:
        return None
    if identifier not in client.resources:
        raise InvalidTarget("The client is not registered for this resource")
    resource_id = authz.resource_id_of(session, identifier)
    if resource_id is None:
        raise InvalidTarget("Unknown resource")
    return Target(identifier=identifier, resource_id=resource_id)


def check_scope(client: OAuthClient, scope: Iterable[str], resource: Target | None) -> None:
    """OIDC scopes and the service's API permissions as registered (`scopes`); with a
    resource, any other value is one of its permissions' names (held or not: decided when
    a token is issued)."""
    for name in scope:
        if name in CLIENT_SCOPES:
            if name not in client.scopes:
                raise InvalidScope(f"The client may not ask for the scope {name}")
        elif resource is None or not NAME_PATTERN.fullmatch(name):
            raise InvalidScope(f"The client may not ask for the scope {name[:64]}")


def _kept(scope: Sequence[str], held: Iterable[str]) -> list[str]:
    held = set(held)
    return [name for name in scope if name in OIDC_SCOPES or name in held]


def user_scope(
    session: Session,
    *,
    scope: Sequence[str],
    resource: str | None,
    user_id: uuid.UUID,
    organization_id: uuid.UUID | None,
) -> list[str]:
    """A user's access token's scope: as granted without a resource; with one, the OIDC
    scopes and the asked-for permissions the user holds there now (global roles, and roles
    in the organization), those not held left out. A resource gone since: none of them."""
    if resource is None:
        return list(scope)
    resource_id = authz.resource_id_of(session, resource)
    if resource_id is None:
        return _kept(scope, ())
    held = authz.user_permissions(
        session, user_id=user_id, resource_id=resource_id, organization_id=organization_id
    )
    return _kept(scope, held)


def identity_claims(
    session: Session, *, user_id: uuid.UUID, organization_id: uuid.UUID | None, scope: Iterable[str]
) -> dict[str, list[str]]:
    """The claims of the `roles` and `organizations` scopes beside `role` (ID token and
    userinfo): the user's product roles (global, and in the selected organization) and the
    ids of the organizations they are a member of."""
    scope = set(scope)
    claims: dict[str, list[str]] = {}
    if Scope.ROLES in scope:
        claims["roles"] = authz.role_names(
            session, user_id=user_id, organization_id=organization_id
        )
    if Scope.ORGANIZATIONS in scope:
        claims["organizations"] = [
            str(organization.id) for organization in organizations.of_user(session, user_id)
        ]
    return claims


def client_scope(
    session: Session, *, client: OAuthClient, scope: Sequence[str] | None, resource: Target
) -> list[str]:
    """A client's own token for a resource: the asked-for permissions its roles hold (all
    it holds there when it asks for none)."""
    held = authz.client_permissions(
        session, client_id=client.client_id, resource_id=resource.resource_id
    )
    if scope is None:
        return held
    return [name for name in scope if name in CLIENT_SCOPES or name in held]
