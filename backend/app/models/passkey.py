"""Passkeys (WebAuthn credentials) and the challenges of their ceremonies."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from app.models.common import UTCDateTime, created_at_field, timestamp_field, uuid_pk
from app.models.user import Email

PasskeyName = Annotated[str, PydanticField(min_length=1, max_length=100)]
# A WebAuthn JSON credential (RegistrationResponseJSON / AuthenticationResponseJSON); its
# fields are checked by the `webauthn` package, its size by MAX_BODY_BYTES.
CredentialJSON = dict[str, Any]


class Passkey(SQLModel, table=True):
    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    credential_id: str = Field(max_length=1400, unique=True)  # base64url, as browsers send it
    public_key: bytes = Field(sa_type=sa.LargeBinary)  # COSE, as the authenticator gave it
    sign_count: int = Field(default=0, sa_type=sa.BigInteger)
    transports: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    aaguid: str = Field(max_length=36)
    name: str = Field(max_length=100)
    created_at: datetime = created_at_field()
    last_used_at: datetime | None = timestamp_field()


class PasskeyRead(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    transports: list[str]


class PasskeyUpdate(BaseModel):
    name: PasskeyName


class RegistrationOptionsRequest(BaseModel):
    """The password, unless the caller's session was opened by a login minutes ago."""

    password: str | None = PydanticField(default=None, min_length=1, max_length=4096)


class RegistrationRequest(BaseModel):
    credential: CredentialJSON
    name: PasskeyName | None = None


class PasskeyOptionsRequest(BaseModel):
    email: Email | None = PydanticField(default=None, max_length=320)


class PasskeyOptions(BaseModel):
    flow_id: uuid.UUID
    options: dict[str, Any]


class PasskeyLoginRequest(BaseModel):
    flow_id: uuid.UUID
    credential: CredentialJSON


class CeremonyKind(StrEnum):
    REGISTRATION = "registration"
    AUTHENTICATION = "authentication"


class WebAuthnChallenge(SQLModel, table=True):
    """One ceremony's challenge: single-use, short-lived, bound to its kind and, for a
    registration or an email's sign-in, to its user. Only its digest is kept, with the
    client address that asked for it (a few live ones per address: crud/passkeys.py)."""

    __tablename__ = "webauthn_challenge"

    id: uuid.UUID = uuid_pk()  # the flow_id of a sign-in
    kind: CeremonyKind = Field(
        sa_type=sa.Enum(
            CeremonyKind,
            native_enum=False,
            length=16,
            values_callable=lambda k: [v.value for v in k],
        )
    )
    challenge_hash: str = Field(max_length=64, unique=True)
    user_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="CASCADE", index=True
    )
    address: str = Field(default="-", max_length=64, index=True)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    used_at: datetime | None = timestamp_field()
