"""The user family: UserBase -> UserCreate / UserUpdate(Me) -> User (table) -> UserRead."""

import unicodedata
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, EmailStr, ValidationInfo, field_validator, model_validator
from sqlmodel import Field, SQLModel, col

from app.core.password_policy import password_problem
from app.core.permissions import Role
from app.models.common import UTCDateTime, created_at_field, utcnow, uuid_pk


def _validated(value: str) -> str | None:
    """The email validator's normalised form of an address (NFC, IDNA domain), or None."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def normalize_email(value: str) -> str:
    """One spelling per address, everywhere: the validator's normal form, then NFKC and case
    folding, so `Ada@X.io`, its full-width spelling and a decomposed `José` each reach one account.
    A string that is no address (a login form's username may hold anything) is folded alike."""
    text = value.strip()
    return unicodedata.normalize("NFKC", _validated(text) or text).casefold()


def is_address(value: str) -> bool:
    """Whether `value` is a well-formed address (what may be kept of a failed attempt: people
    paste passwords into the email field)."""
    return len(value) <= 320 and _validated(value.strip()) is not None


def _check_password(value: str) -> str:
    problem = password_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Email = Annotated[EmailStr, AfterValidator(normalize_email)]
NewPassword = Annotated[str, AfterValidator(_check_password)]


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")  # PostgreSQL text cannot hold them
    return value


FullName = Annotated[str | None, Field(max_length=255), AfterValidator(_no_nul)]

ROLE_TYPE = sa.Enum(
    Role, native_enum=False, length=16, values_callable=lambda roles: [r.value for r in roles]
)


class UserBase(SQLModel):
    email: str = Field(max_length=320)
    full_name: FullName = None


class UserCreate(UserBase):
    """Self-registration: role and flags are never taken from the body."""

    email: Email = Field(max_length=320)
    password: NewPassword

    @field_validator("password")
    @classmethod
    def _not_personal(cls, password: str, info: ValidationInfo) -> str:
        """The password policy's account rules, which need the email and the name (validated
        before the password: they come first)."""
        email, full_name = info.data.get("email"), info.data.get("full_name")
        if problem := password_problem(password, email=email, full_name=full_name):
            raise ValueError(problem)
        return password


class UserUpdateMe(SQLModel):
    """The caller's own profile. A new email needs the current password and stays pending
    until the link mailed to it is followed."""

    email: Email | None = Field(default=None, max_length=320)
    full_name: FullName = None
    current_password: str | None = Field(default=None, min_length=1, max_length=4096)

    @model_validator(mode="before")
    @classmethod
    def _no_null_email(cls, data: Any) -> Any:
        if isinstance(data, dict) and "email" in data and data["email"] is None:
            raise ValueError("email cannot be null")
        return data


class UserUpdate(UserUpdateMe):
    """Admin update: also role, is_active and a new password."""

    role: Role | None = None
    is_active: bool | None = None
    password: NewPassword | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_null_flags(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in ("role", "is_active", "password"):
                if name in data and data[name] is None:
                    raise ValueError(f"{name} cannot be null")
        return data


class User(UserBase, table=True):
    # GET /users filtered by role or by the active flag, in page order: the page and its
    # count are read from the index, not by scanning every user.
    __table_args__ = (
        sa.Index("ix_user_role_created_at", "role", "created_at", "id"),
        sa.Index("ix_user_is_active_created_at", "is_active", "created_at", "id"),
    )

    id: uuid.UUID = uuid_pk()
    email: str = Field(max_length=320, unique=True)
    role: Role = Field(default=Role.USER, sa_type=ROLE_TYPE)
    is_active: bool = True
    is_verified: bool = False
    hashed_password: str = Field(max_length=255)
    # Raised by every password reset, change or admin-set password: a login, an MFA step or a
    # cost upgrade that began under an older version never completes (auth/credentials.py).
    credentials_version: int = 0
    pending_email: str | None = Field(default=None, max_length=320)
    mfa_enabled: bool = False
    mfa_secret: str | None = Field(default=None, max_length=255)  # encrypted at rest
    mfa_last_step: int | None = Field(default=None, sa_type=sa.BigInteger)
    # The language of the person's last sign-in on the hosted pages (app/core/i18n.py): the
    # language of the mails that no request of theirs causes.
    locale: str | None = Field(default=None, max_length=8)
    # The user's id in the system they were imported from (app/imports): a second import of the
    # same file finds them by it.
    external_id: str | None = Field(default=None, max_length=255, unique=True, index=True)
    created_at: datetime = created_at_field(index=True)
    updated_at: datetime = Field(
        default_factory=utcnow, sa_type=UTCDateTime, sa_column_kwargs={"onupdate": utcnow}
    )


class UserRead(UserBase):
    id: uuid.UUID
    pending_email: str | None = None
    role: Role
    is_active: bool
    is_verified: bool
    mfa_enabled: bool
    created_at: datetime
    updated_at: datetime


# The columns of a UserRead, for reads that need no ORM object (the per-request caller, the
# user list): plain rows cost a fraction of loading User entities.
USER_READ_FIELDS = tuple(UserRead.model_fields)
USER_READ_COLUMNS = tuple(col(getattr(User, name)) for name in USER_READ_FIELDS)


def user_read(values: Sequence[Any]) -> UserRead:
    """A UserRead from the values of USER_READ_COLUMNS, in their order."""
    return UserRead.model_validate(dict(zip(USER_READ_FIELDS, values, strict=True)))
