"""Organizations (tenants of the product), their members and the members' roles there
(AUTHZ.md, "Organizations")."""

import re
import uuid
from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from app.models.authz import RoleRef
from app.models.common import UTCDateTime, created_at_field, uuid_pk
from app.models.user import Email

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _slug(value: str) -> str:
    if not SLUG_PATTERN.fullmatch(value):
        raise ValueError("must match ^[a-z0-9][a-z0-9-]{0,62}$")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
OrgName = Annotated[str, PydanticField(min_length=1, max_length=200)]


class Organization(SQLModel, table=True):
    __tablename__ = "organization"

    id: uuid.UUID = uuid_pk()
    name: str = Field(max_length=200)
    slug: str = Field(max_length=63, unique=True)
    created_at: datetime = created_at_field()


class Membership(SQLModel, table=True):
    """A user's membership of an organization; its roles are MembershipRole rows."""

    __tablename__ = "membership"
    __table_args__ = (sa.UniqueConstraint("organization_id", "user_id"),)

    id: uuid.UUID = uuid_pk()
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    user_id: uuid.UUID = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    created_at: datetime = created_at_field()


class MembershipRole(SQLModel, table=True):
    __tablename__ = "membership_role"

    membership_id: uuid.UUID = Field(
        foreign_key="membership.id", ondelete="CASCADE", primary_key=True
    )
    role_id: uuid.UUID = Field(
        foreign_key="product_role.id", ondelete="CASCADE", primary_key=True, index=True
    )


class OrganizationCreate(BaseModel):
    name: OrgName
    slug: Slug | None = None  # derived from the name when absent


class OrganizationUpdate(BaseModel):
    name: OrgName | None = None
    slug: Slug | None = None


class OrganizationRead(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    created_at: datetime


class MyOrganization(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    roles: list[RoleRef]


class MemberRead(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str | None
    roles: list[RoleRef]


INVITATION_DAYS = 7


class Invitation(SQLModel, table=True):
    """A pending invitation to an organization: mailed as a single-use link. One per address
    and organization: a second replaces the first (its link stops working)."""

    __tablename__ = "invitation"
    __table_args__ = (sa.UniqueConstraint("organization_id", "email"),)

    id: uuid.UUID = uuid_pk()
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    email: str = Field(max_length=320)  # normalised
    role_ids: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    token_digest: str = Field(max_length=64, unique=True)
    inviter_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL", index=True
    )
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)  # retention
    created_at: datetime = created_at_field()


class InvitationCreate(BaseModel):
    email: Email
    roles: Annotated[list[uuid.UUID], PydanticField(max_length=50)] = []


class InvitationRead(BaseModel):
    id: uuid.UUID
    email: str
    roles: list[RoleRef]
    expires_at: datetime
    inviter: uuid.UUID | None


class InvitationAccept(BaseModel):
    token: Annotated[str, PydanticField(min_length=1, max_length=256)]


class Accepted(BaseModel):
    """The membership an accepted invitation made (or added roles to)."""

    organization: OrganizationRead
    roles: list[RoleRef]
