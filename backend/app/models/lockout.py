"""Consecutive failed logins of one account from one address, and from all addresses."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.models.common import created_at_field, timestamp_field

ALL_ADDRESSES = "*"


class LoginFailure(SQLModel, table=True):
    """One counter: `account` is the digest of a normalised email, whether or not an account
    has it (so an unknown email is counted and locked exactly like a real one); `address` is
    the client address, or ALL_ADDRESSES for the account-wide count."""

    __tablename__ = "login_failure"

    account: str = Field(primary_key=True, max_length=64)
    address: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    locked_until: datetime | None = timestamp_field()
    updated_at: datetime = created_at_field()
