"""The product's authorization (AUTHZ.md): API resources with their permissions, roles that
hold permissions, and the roles assigned to users (globally) and to confidential clients.
Roles inside an organization are in models/organization.py.

The service's own API is the built-in resource: it is not a row (its identifier is the issuer,
a setting, and its permissions are the code's), and role permissions on it name
BUILTIN_RESOURCE_ID. So `role_permission` names a permission by (resource id, name) with no
foreign key to `api_permission`: the steps that delete a resource or drop a permission delete
the roles' grants of it in the same transaction (crud/authz.py)."""

import re
import uuid
from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel, field_validator
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from app.models.common import created_at_field, uuid_pk

# The built-in resource's id in role_permission and in the API (AUTHZ.md, "API resources").
BUILTIN_RESOURCE_ID = uuid.UUID(int=0)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_PERMISSIONS_PER_RESOURCE = 500
MAX_PERMISSIONS_PER_ROLE = 200
MAX_ROLES_PER_HOLDER = 50  # on a user, a membership or a client
MAX_IDENTIFIER_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 500


def _name(value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError("must match ^[A-Za-z0-9_.:-]{1,64}$")
    return value


Name = Annotated[str, AfterValidator(_name)]
Description = Annotated[str, PydanticField(max_length=MAX_DESCRIPTION_LENGTH)]


def _identifier(value: str) -> str:
    """An absolute URI without a fragment (RFC 8707 §2), printable ASCII only."""
    if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9+.-]*:[\x21-\x7e]+", value) or "#" in value:
        raise ValueError("must be an absolute URI without a fragment")
    return value


Identifier = Annotated[
    str, PydanticField(max_length=MAX_IDENTIFIER_LENGTH), AfterValidator(_identifier)
]


class ApiResource(SQLModel, table=True):
    __tablename__ = "api_resource"

    id: uuid.UUID = uuid_pk()
    identifier: str = Field(max_length=MAX_IDENTIFIER_LENGTH, unique=True)
    name: str = Field(max_length=200)
    created_at: datetime = created_at_field()


class ApiPermission(SQLModel, table=True):
    __tablename__ = "api_permission"
    __table_args__ = (sa.UniqueConstraint("resource_id", "name"),)

    id: uuid.UUID = uuid_pk()
    resource_id: uuid.UUID = Field(foreign_key="api_resource.id", ondelete="CASCADE")
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=MAX_DESCRIPTION_LENGTH)


class ProductRole(SQLModel, table=True):
    """A role of the product (AUTHZ.md "Roles"), not the user's `role` in this service."""

    __tablename__ = "product_role"

    id: uuid.UUID = uuid_pk()
    name: str = Field(max_length=64, unique=True)
    description: str = Field(default="", max_length=MAX_DESCRIPTION_LENGTH)
    created_at: datetime = created_at_field()


class RolePermission(SQLModel, table=True):
    __tablename__ = "role_permission"
    __table_args__ = (sa.Index("ix_role_permission_resource", "resource_id", "name"),)

    role_id: uuid.UUID = Field(foreign_key="product_role.id", ondelete="CASCADE", primary_key=True)
    resource_id: uuid.UUID = Field(primary_key=True)  # api_resource.id or BUILTIN_RESOURCE_ID
    name: str = Field(max_length=64, primary_key=True)


class UserRole(SQLModel, table=True):
    """A role assigned to a user globally (in no organization)."""

    __tablename__ = "user_role"

    user_id: uuid.UUID = Field(foreign_key="user.id", ondelete="CASCADE", primary_key=True)
    role_id: uuid.UUID = Field(
        foreign_key="product_role.id", ondelete="CASCADE", primary_key=True, index=True
    )


class ClientRole(SQLModel, table=True):
    """A role assigned to a confidential client (its client_credentials tokens)."""

    __tablename__ = "client_role"

    client_id: str = Field(
        foreign_key="oauth_client.client_id", ondelete="CASCADE", primary_key=True, max_length=64
    )
    role_id: uuid.UUID = Field(
        foreign_key="product_role.id", ondelete="CASCADE", primary_key=True, index=True
    )


# API schemas


class PermissionIn(BaseModel):
    name: Name
    description: Description = ""


class PermissionOut(BaseModel):
    name: str
    description: str


def _unique_names(permissions: list[PermissionIn]) -> list[PermissionIn]:
    names = [permission.name for permission in permissions]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate permission: {', '.join(duplicates)}")
    return permissions


Permissions = Annotated[
    list[PermissionIn],
    PydanticField(max_length=MAX_PERMISSIONS_PER_RESOURCE),
    AfterValidator(_unique_names),
]


class ResourceCreate(BaseModel):
    identifier: Identifier
    name: Annotated[str, PydanticField(min_length=1, max_length=200)]
    permissions: Permissions = []


class ResourceUpdate(BaseModel):
    """PATCH: `permissions` replaces the list (permissions left out leave every role)."""

    name: Annotated[str, PydanticField(min_length=1, max_length=200)] | None = None
    permissions: Permissions | None = None


class ResourceRead(BaseModel):
    id: uuid.UUID
    identifier: str
    name: str
    builtin: bool = False
    permissions: list[PermissionOut]
    created_at: datetime | None


class RolePermissionRef(BaseModel):
    """A permission as a role names it: the resource's identifier and the permission's name."""

    resource: Annotated[str, PydanticField(min_length=1, max_length=MAX_IDENTIFIER_LENGTH)]
    name: Name


def _unique_refs(refs: list[RolePermissionRef]) -> list[RolePermissionRef]:
    if len({(ref.resource, ref.name) for ref in refs}) != len(refs):
        raise ValueError("duplicate permission")
    return refs


RolePermissions = Annotated[
    list[RolePermissionRef],
    PydanticField(max_length=MAX_PERMISSIONS_PER_ROLE),
    AfterValidator(_unique_refs),
]


class RoleCreate(BaseModel):
    name: Name
    description: Description = ""
    permissions: RolePermissions = []


class RoleUpdate(BaseModel):
    name: Name | None = None
    description: Description | None = None
    permissions: RolePermissions | None = None


class RoleRead(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    permissions: list[RolePermissionRef]
    created_at: datetime


class RoleRef(BaseModel):
    id: uuid.UUID
    name: str


class RoleIds(BaseModel):
    """PUT a holder's roles: the whole list (AUTHZ.md: at most 50)."""

    roles: Annotated[list[uuid.UUID], PydanticField(max_length=MAX_ROLES_PER_HOLDER)]

    @field_validator("roles")
    @classmethod
    def _distinct(cls, roles: list[uuid.UUID]) -> list[uuid.UUID]:
        return list(dict.fromkeys(roles))


class RoleList(BaseModel):
    roles: list[RoleRef]


class EffectivePermissions(BaseModel):
    permissions: list[str]


MAX_CHECKS = 100


class Check(BaseModel):
    user_id: uuid.UUID
    resource: Annotated[str, PydanticField(min_length=1, max_length=MAX_IDENTIFIER_LENGTH)]
    permission: Annotated[str, PydanticField(min_length=1, max_length=64)]
    organization: Annotated[str, PydanticField(min_length=1, max_length=64)] | None = None


class CheckRequest(BaseModel):
    """POST /authz/check: 1 to 100 checks; a client may authenticate with its credentials in
    the body instead of HTTP Basic."""

    checks: Annotated[list[Check], PydanticField(min_length=1, max_length=MAX_CHECKS)]
    client_id: Annotated[str, PydanticField(max_length=64)] | None = None
    client_secret: Annotated[str, PydanticField(max_length=256)] | None = None


class CheckResults(BaseModel):
    results: list[bool]
