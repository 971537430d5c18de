"""Column types and helpers shared by the models."""

import base64
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Dialect
from sqlmodel import Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    skip: int
    limit: int


class CursorPage(Page[T], Generic[T]):
    """A page of a list in keyset order: `next_cursor`, passed back as `cursor`, gets the
    page after this one (null on the last), at the cost of the first page at any depth."""

    next_cursor: str | None = None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_VERSION = b"\x01"
_CURSOR = struct.Struct(">cq16s")  # version, created_at in µs since the epoch, id


@dataclass(frozen=True, slots=True)
class PageCursor:
    """A position in a list ordered by (created_at, id): the last row of a page.

    Opaque to clients (base64url of a version, the time and the id) and strictly checked
    when read back: anything else is a ValueError. It is not signed: it only says where a
    page starts, which the caller may ask for anyway; the filters come with each request."""

    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        micros = (self.created_at - _EPOCH) // timedelta(microseconds=1)
        raw = _CURSOR.pack(_CURSOR_VERSION, micros, self.id.bytes)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str) -> "PageCursor":
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
            version, micros, id_bytes = _CURSOR.unpack(raw)
            cursor = cls(_EPOCH + timedelta(microseconds=micros), uuid.UUID(bytes=id_bytes))
        except (ValueError, struct.error, OverflowError) as error:  # binascii.Error too
            raise ValueError("invalid cursor") from error
        if version != _CURSOR_VERSION or cursor.encode() != text:  # one spelling per cursor
            raise ValueError("invalid cursor")
        return cursor


def parse_cursor(value: str | None) -> PageCursor | None:
    """A `cursor` query parameter: a malformed one fails validation (422)."""
    return None if value is None else PageCursor.decode(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite keeps no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def created_at_field(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kwargs)


def timestamp_field(**kwargs: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, **kwargs)


def uuid_pk() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)
