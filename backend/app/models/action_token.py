"""Single-use tokens mailed to users (password reset, email verification) and MFA challenges.

Only a SHA-256 digest of the token is stored; `used_at` makes it single-use.
"""

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.common import UTCDateTime, created_at_field, timestamp_field, uuid_pk


class TokenPurpose(StrEnum):
    RESET_PASSWORD = "reset_password"
    VERIFY_EMAIL = "verify_email"
    CHANGE_EMAIL = "change_email"  # confirms a pending address, mailed to it
    MFA_LOGIN = "mfa_login"  # an MFA challenge after a password
    MFA_LOGIN_PASSKEY = "mfa_login_passkey"  # after a passkey without user verification


# The first factor an MFA challenge follows (its RFC 8176 amr value), by its purpose.
MFA_CHALLENGES = {TokenPurpose.MFA_LOGIN: "pwd", TokenPurpose.MFA_LOGIN_PASSKEY: "hwk"}


PURPOSE_TYPE = sa.Enum(
    TokenPurpose, native_enum=False, length=32, values_callable=lambda ps: [p.value for p in ps]
)


class ActionToken(SQLModel, table=True):
    __tablename__ = "action_token"

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    purpose: TokenPurpose = Field(sa_type=PURPOSE_TYPE)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)  # retention
    used_at: datetime | None = timestamp_field()
    attempts: int = 0
    # The address a mailed token was sent to: it acts only while the account (or its pending
    # change) is at that address.
    email: str | None = Field(default=None, max_length=320)
    # An MFA challenge: the credentials version its password was checked under.
    credentials_version: int | None = None


class RecoveryCode(SQLModel, table=True):
    __tablename__ = "mfa_recovery_code"

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    code_hash: str = Field(max_length=64)
    used_at: datetime | None = timestamp_field()
