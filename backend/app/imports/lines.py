"""One line of an import (EVENTS.md, "Bringing users from another system"), validated alone:
`{email, full_name?, role?, is_verified?, is_active?, password?, password_hash?,
mfa_totp_secret?, roles?, organizations?: [{slug, roles}], external_id?, created_at?}`.

`prepare` turns a line into what the import step writes, outside any transaction: the
password hash checked (or a plain password judged by the policy and hashed), the TOTP secret
encrypted as the service stores its own. A line that cannot be imported becomes its `error`,
with a reason that never holds a password or a hash.
"""

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic import Field as PydanticField

from app.auth.new_password import ensure_acceptable, new_password_hash_sync
from app.core import crypto
from app.core.permissions import Role
from app.errors import WeakPassword
from app.imports import firebase, hash_formats
from app.models.authz import MAX_ROLES_PER_HOLDER, Name
from app.models.user import Email, FullName

# The hash of an account imported without a password: it never verifies (core/passwords.py);
# its owner sets one by password recovery.
NO_PASSWORD = "!"
MAX_STORED_HASH = 255  # user.hashed_password
MIN_TOTP_SECRET_CHARS = 16  # 80 bits, the shortest secret authenticator apps are given

Status = Literal["created", "updated", "skipped", "error"]


class LineResult(BaseModel):
    line: int
    email: str | None = None  # absent when the line named none (or no object at all)
    status: Status
    reason: str | None = None


class OrganizationLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: Annotated[str, PydanticField(min_length=1, max_length=63)]
    roles: Annotated[list[Name], PydanticField(max_length=MAX_ROLES_PER_HOLDER)] = []


class ImportLine(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    email: Email = PydanticField(max_length=320)
    full_name: FullName = None
    role: Role = Role.USER
    is_verified: bool = False
    is_active: bool = True
    password: Annotated[str | None, PydanticField(max_length=4096)] = None
    password_hash: Annotated[str | None, PydanticField(max_length=1024)] = None
    mfa_totp_secret: Annotated[str | None, PydanticField(max_length=256)] = None
    roles: Annotated[list[Name], PydanticField(max_length=MAX_ROLES_PER_HOLDER)] = []
    organizations: Annotated[list[OrganizationLine], PydanticField(max_length=100)] = []
    external_id: Annotated[str | None, PydanticField(min_length=1, max_length=255)] = None
    created_at: datetime | None = None

    @field_validator("external_id")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("must be printable text")
        return value

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """A time without an offset is read as UTC; every time is kept in UTC."""
        if value is None:
            return None
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass
class Prepared:
    """A valid line, ready to write: what it sets, and which of its fields it gave."""

    line: int
    email: str
    given: set[str]
    full_name: str | None
    role: Role
    is_verified: bool
    is_active: bool
    hashed_password: str
    mfa_secret: str | None  # encrypted (core/crypto.py)
    roles: list[str]
    organizations: dict[str, list[str]]
    external_id: str | None
    created_at: datetime | None
    hash_format: str = field(default="none")


def refused(line: int, email: object, reason: str) -> LineResult:
    shown = email[:320] if isinstance(email, str) else None
    return LineResult(line=line, email=shown, status="error", reason=reason)


def _reason(error: ValidationError) -> str:
    """The line's first problem, by field; pydantic's message (the input is hidden)."""
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "line"
    if problem["type"] == "extra_forbidden":
        return f"{where}: unknown field"
    if problem["loc"][:1] == ("email",):
        return "email: not a valid email address"
    return f"{where}: {problem['msg'].removeprefix('Value error, ')}"


def _totp_secret(secret: str) -> str:
    """A base32 TOTP secret as authenticator apps take it (upper case, no spaces or
    padding), checked; ValueError names what is wrong, never the secret."""
    text = "".join(secret.split()).upper().rstrip("=")
    try:
        base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise ValueError("mfa_totp_secret: not a base32 secret") from None
    if len(text) < MIN_TOTP_SECRET_CHARS:
        raise ValueError(f"mfa_totp_secret: at least {MIN_TOTP_SECRET_CHARS} base32 characters")
    return text


def _stored_hash(value: str, parameters: firebase.FirebaseParameters | None) -> tuple[str, str]:
    """(the hash to store, its format's name); MalformedHash or FirebaseError with a reason."""
    if value.startswith(firebase.LINE_PREFIX):
        value = firebase.complete(value, parameters)
    if len(value) > MAX_STORED_HASH:
        raise hash_formats.MalformedHash(f"password hash longer than {MAX_STORED_HASH} characters")
    return value, hash_formats.check(value).name


def prepare(
    line: int,
    item: Any,
    *,
    firebase_parameters: firebase.FirebaseParameters | None = None,
    hash_passwords: bool = True,
) -> Prepared | LineResult:
    """A line ready to write, or its error. Plain passwords are judged by the password policy
    and hashed (the service's own scheme) unless `hash_passwords` is False (a dry run)."""
    if not isinstance(item, dict):
        return refused(line, None, "not a JSON object")
    try:
        valid = ImportLine.model_validate(item)
    except ValidationError as error:
        return refused(line, item.get("email"), _reason(error))
    email = valid.email
    if valid.password is not None and valid.password_hash is not None:
        return refused(line, email, "give password or password_hash, not both")
    try:
        hashed, hash_format = NO_PASSWORD, "none"
        if valid.password_hash is not None:
            hashed, hash_format = _stored_hash(valid.password_hash, firebase_parameters)
        elif valid.password is not None:
            name = valid.full_name
            if hash_passwords:
                hashed = new_password_hash_sync(valid.password, email=email, full_name=name)
            else:
                ensure_acceptable(valid.password, email=email, full_name=name)
            hash_format = "password"
        secret = valid.mfa_totp_secret
        encrypted = crypto.encrypt(_totp_secret(secret)) if secret is not None else None
    except WeakPassword as weak:
        return refused(line, email, f"password: {weak.detail}")
    except ValueError as error:  # MalformedHash, FirebaseError, a bad TOTP secret
        return refused(line, email, str(error))
    return Prepared(
        line=line,
        email=email,
        given=set(valid.model_fields_set),
        full_name=valid.full_name,
        role=valid.role,
        is_verified=valid.is_verified,
        is_active=valid.is_active,
        hashed_password=hashed,
        mfa_secret=encrypted,
        roles=sorted(set(valid.roles)),
        organizations={o.slug: sorted(set(o.roles)) for o in valid.organizations},
        external_id=valid.external_id,
        created_at=valid.created_at,
        hash_format=hash_format,
    )
