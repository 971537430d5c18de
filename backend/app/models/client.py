"""OAuth clients (OAuthClient family: table, Create/Update/Read), remembered consents, and
authorization codes."""

import uuid
from datetime import datetime
from enum import StrEnum
from ipaddress import ip_address
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit

import sqlalchemy as sa
from ada_url import URL
from pydantic import AfterValidator, BaseModel, WithJsonSchema, model_validator
from sqlmodel import Field, SQLModel

from app.core.permissions import PERMISSION_DESCRIPTIONS
from app.models.authz import Identifier as ResourceIdentifier
from app.models.common import UTCDateTime, created_at_field, timestamp_field, utcnow

MAX_URI_LENGTH = 2048
MAX_RESOURCE_LENGTH = 2048  # an API resource's identifier (models/authz.py)
MAX_CLIENT_TOKEN_SCOPE = 4096  # a client's own token: the permissions it holds on a resource
# The algorithms a client may ask its ID tokens signed with (`id_token_signed_response_alg`,
# OIDC Dynamic Client Registration §2): RS256 unless it registered ES256 (OIDC.md rev. 2).
IdTokenAlg = Literal["RS256", "ES256"]
DEFAULT_ID_TOKEN_ALG: IdTokenAlg = "RS256"


class GrantType(StrEnum):
    AUTHORIZATION_CODE = "authorization_code"
    REFRESH_TOKEN = "refresh_token"
    CLIENT_CREDENTIALS = "client_credentials"


class OrganizationUsage(StrEnum):
    """Whether the client's authorization requests select an organization (AUTHZ.md)."""

    NONE = "none"  # the `organization` parameter is ignored
    ALLOW = "allow"
    REQUIRE = "require"  # without the parameter, the hosted page asks the user to pick one


MAX_CLIENT_RESOURCES = 50


class Scope(StrEnum):
    OPENID = "openid"
    PROFILE = "profile"
    EMAIL = "email"
    OFFLINE_ACCESS = "offline_access"
    ROLES = "roles"
    ORGANIZATIONS = "organizations"  # the ids of the user's organizations (AUTHZ.md)


# The built-in resource's permissions, which a client asks for as scopes to use the
# service's own API with a user's token (AUTHZ.md); beside the OIDC scopes.
# The built-in resource's permissions a client may ask for as scopes (AUTHZ.md).
API_SCOPES = tuple(permission.value for permission in PERMISSION_DESCRIPTIONS)
CLIENT_SCOPES = (*(scope.value for scope in Scope), *API_SCOPES)


def check_scope(value: str) -> str:
    if value not in CLIENT_SCOPES:
        raise ValueError(f"must be one of: {', '.join(CLIENT_SCOPES)}")
    return value


ClientScope = Annotated[
    str, AfterValidator(check_scope), WithJsonSchema({"type": "string", "enum": CLIENT_SCOPES})
]


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _control(ch: str) -> bool:
    return ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F


def _read_alike(value: str, parts: SplitResult) -> bool:
    """Whether a browser (the WHATWG URL parser, ada-url) reads `value` with the scheme, host
    and port Python's urlsplit reads, and no user name or password. Browsers decode a
    percent-encoded host, map full-width and other Unicode forms, turn `127.1` or
    `0x7f.0.0.1` into `127.0.0.1`: the host Python checks would not be where they go."""
    try:
        url = URL(value)
    except ValueError:
        return False
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address, as WHATWG writes it
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return (
        url.protocol == f"{parts.scheme}:"
        and url.hostname == host
        and (int(url.port) if url.port else default_port)
        == (default_port if parts.port is None else parts.port)
        and not url.username
        and not url.password
    )


def check_redirect_uri(value: str) -> str:
    """Absolute, no fragment, https except on loopback and localhost (RFC 9700 §4.1), and
    read alike by Python and by browsers (OIDC.md revision 2): no backslash (a browser reads
    `http://evil\\@127.0.0.1/` as host `evil`), no user name or password, one host."""
    if len(value) > MAX_URI_LENGTH or any(_control(ch) for ch in value):
        raise ValueError("must be a URI of at most 2048 characters, without spaces")
    if "\\" in value:
        raise ValueError("must not contain a backslash")
    parts = urlsplit(value)
    if "#" in value or not parts.netloc or not parts.hostname:
        raise ValueError("must be an absolute URI without a fragment")
    if "@" in parts.netloc:
        raise ValueError("must not contain a user name or password")
    if not _read_alike(value, parts):
        raise ValueError(
            "must name its host as browsers read it: ASCII (xn-- for international names),"
            " no percent-encoding, IP addresses in their usual form"
        )
    if parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname)):
        return value
    raise ValueError("must use https (http only for loopback and localhost)")


RedirectUri = Annotated[str, AfterValidator(check_redirect_uri)]
ClientName = Annotated[str, Field(min_length=1, max_length=255)]
DEFAULT_GRANTS = [GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN]
# The API's scopes, and organizations, only when asked for.
DEFAULT_SCOPES = [scope.value for scope in Scope if scope is not Scope.ORGANIZATIONS]


PUBLIC_NEEDS_PKCE = "A public client must use PKCE (require_pkce true)"
CODE_NEEDS_REDIRECT_URI = "redirect_uris: at least one is required for authorization_code"


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


class ClientUpdate(BaseModel):
    name: ClientName | None = None
    redirect_uris: list[RedirectUri] | None = Field(default=None, max_length=32)
    post_logout_redirect_uris: list[RedirectUri] | None = Field(default=None, max_length=32)
    first_party: bool | None = None
    require_pkce: bool | None = None
    grant_types: list[GrantType] | None = Field(default=None, min_length=1)
    scopes: list[ClientScope] | None = Field(default=None, min_length=1)
    id_token_signed_response_alg: IdTokenAlg | None = None
    resources: list[ResourceIdentifier] | None = Field(
        default=None, max_length=MAX_CLIENT_RESOURCES
    )
    organization_usage: OrganizationUsage | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if value is None:
                    raise ValueError(f"{name} cannot be null")
        return data


class ClientCreate(BaseModel):
    name: ClientName
    # Required with authorization_code; a client_credentials-only client (a service) has none.
    redirect_uris: list[RedirectUri] = Field(default_factory=list, max_length=32)
    post_logout_redirect_uris: list[RedirectUri] = Field(default_factory=list, max_length=32)
    public: bool = False
    first_party: bool = False
    # False: a confidential client may sign users in without PKCE, with openid and a nonce
    # (RFC 9700 §2.1.1; the OpenID Basic OP plan sends none). Public clients always need it.
    require_pkce: bool = True
    grant_types: list[GrantType] = Field(default_factory=lambda: list(DEFAULT_GRANTS), min_length=1)
    scopes: list[ClientScope] = Field(default_factory=lambda: list(DEFAULT_SCOPES), min_length=1)
    id_token_signed_response_alg: IdTokenAlg = DEFAULT_ID_TOKEN_ALG
    # Identifiers of the API resources the client may ask tokens for (RFC 8707 `resource`).
    resources: list[ResourceIdentifier] = Field(
        default_factory=list, max_length=MAX_CLIENT_RESOURCES
    )
    organization_usage: OrganizationUsage = OrganizationUsage.NONE

    @model_validator(mode="after")
    def _consistent(self) -> "ClientCreate":
        if self.public and GrantType.CLIENT_CREDENTIALS in self.grant_types:
            raise ValueError("a public client cannot use client_credentials")
        if self.public and not self.require_pkce:
            raise ValueError(PUBLIC_NEEDS_PKCE)
        if GrantType.AUTHORIZATION_CODE in self.grant_types and not self.redirect_uris:
            raise ValueError(CODE_NEEDS_REDIRECT_URI)
        self.redirect_uris = _unique(self.redirect_uris)
        self.post_logout_redirect_uris = _unique(self.post_logout_redirect_uris)
        self.grant_types = _unique(self.grant_types)
        self.scopes = _unique(self.scopes)
        self.resources = _unique(self.resources)
        return self


class OAuthClient(SQLModel, table=True):
    __tablename__ = "oauth_client"

    client_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=255)
    secret_digest: str | None = Field(default=None, max_length=64)  # SHA-256; None: public
    redirect_uris: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    post_logout_redirect_uris: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    public: bool = False
    first_party: bool = False
    require_pkce: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    grant_types: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    scopes: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    id_token_signed_response_alg: str = Field(
        default=DEFAULT_ID_TOKEN_ALG,
        max_length=8,
        sa_column_kwargs={"server_default": DEFAULT_ID_TOKEN_ALG},
    )
    resources: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    organization_usage: str = Field(
        default=OrganizationUsage.NONE.value,
        max_length=8,
        sa_column_kwargs={"server_default": OrganizationUsage.NONE.value},
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ClientRead(BaseModel):
    client_id: str
    name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    public: bool
    first_party: bool
    require_pkce: bool
    grant_types: list[GrantType]
    scopes: list[str]
    id_token_signed_response_alg: str
    resources: list[str]
    organization_usage: OrganizationUsage
    created_at: datetime


class ClientCreated(ClientRead):
    """The answer of a registration or a secret rotation: the secret, shown this once."""

    client_secret: str | None = None


class OAuthConsent(SQLModel, table=True):
    """What a user allowed a third-party client, remembered until revoked."""

    __tablename__ = "oauth_consent"

    user_id: uuid.UUID = Field(foreign_key="user.id", ondelete="CASCADE", primary_key=True)
    client_id: str = Field(
        foreign_key="oauth_client.client_id", ondelete="CASCADE", primary_key=True, max_length=64
    )
    scopes: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    created_at: datetime = created_at_field()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuthorizationCode(SQLModel, table=True):
    """An authorization code (only its SHA-256 is kept), bound to what it was issued for;
    `used_at` makes it single-use and `session_id` names what its exchange issued."""

    __tablename__ = "oauth_code"

    digest: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(
        foreign_key="oauth_client.client_id", ondelete="CASCADE", index=True, max_length=64
    )
    user_id: uuid.UUID = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    browser_session_id: uuid.UUID | None = None
    redirect_uri: str = Field(max_length=MAX_URI_LENGTH)
    scope: str = Field(max_length=255)
    nonce: str | None = Field(default=None, max_length=255)
    code_challenge: str | None = Field(default=None, max_length=128)  # None: issued without
    acr_values: str | None = Field(default=None, max_length=255)  # as asked, for the `acr` claim
    auth_time: datetime = Field(sa_type=UTCDateTime)
    amr: str = Field(max_length=64)
    resource: str | None = Field(default=None, max_length=MAX_RESOURCE_LENGTH)  # RFC 8707
    organization_id: uuid.UUID | None = None  # the organization the request selected
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)  # retention
    used_at: datetime | None = timestamp_field()
    session_id: uuid.UUID | None = None


class ClientToken(SQLModel, table=True):
    """An access token a client got for itself (client_credentials), by its `jti`: no user,
    no refresh chain, so no auth_session row; kept so that introspection and revocation
    know it at once (revoked: its row says so; its client deleted: the row is gone)."""

    __tablename__ = "oauth_client_token"

    jti: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(
        foreign_key="oauth_client.client_id", ondelete="CASCADE", index=True, max_length=64
    )
    scope: str = Field(max_length=MAX_CLIENT_TOKEN_SCOPE)
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)  # retention
    revoked_at: datetime | None = timestamp_field()
