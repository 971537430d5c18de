"""Sessions: one row per login (an API login, a hosted-page browser login, an OAuth grant);
the refresh token chain of that login lives here, so every rule that ends sessions ends all."""

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from app.models.common import UTCDateTime, created_at_field, timestamp_field, uuid_pk


class SessionKind(StrEnum):
    API = "api"  # POST /auth/login: the service's own token pair
    BROWSER = "browser"  # the hosted login page's cookie (single sign-on)
    OAUTH = "oauth"  # tokens issued to an OAuth client at the token endpoint


KIND_TYPE = sa.Enum(
    SessionKind, native_enum=False, length=16, values_callable=lambda ks: [k.value for k in ks]
)


class AuthSession(SQLModel, table=True):
    __tablename__ = "auth_session"

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    refresh_jti: str = Field(max_length=64)  # the one live refresh token of this session
    previous_jti: str | None = Field(default=None, max_length=64)  # the one it replaced
    rotated_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
    last_used_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)  # retention
    revoked_at: datetime | None = timestamp_field(index=True)  # retention
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    kind: SessionKind = Field(default=SessionKind.API, sa_type=KIND_TYPE)
    # OAuth sessions: the client, the granted scope, the login they came from (auth_time, amr).
    client_id: str | None = Field(
        default=None,
        foreign_key="oauth_client.client_id",
        ondelete="CASCADE",
        max_length=64,
        index=True,
    )
    scope: str | None = Field(default=None, max_length=255)
    auth_time: datetime | None = timestamp_field()
    amr: str | None = Field(default=None, max_length=64)  # space-separated RFC 8176 values
    browser_session_id: uuid.UUID | None = None  # the browser session that approved it
    # The API resource its access tokens are for (RFC 8707; None: the service's own API) and
    # the organization the sign-in selected (AUTHZ.md, "Tokens").
    resource: str | None = Field(default=None, max_length=2048)
    organization_id: uuid.UUID | None = Field(default=None, index=True)


class SessionRead(BaseModel):
    id: uuid.UUID
    kind: SessionKind
    client_name: str | None = None  # an OAuth session's client
    created_at: datetime
    last_used_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool
