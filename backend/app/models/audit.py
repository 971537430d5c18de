"""The audit log: one row per security-relevant action, written in the action's transaction."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from app.models.common import created_at_field

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_ID)
    at: datetime = created_at_field(index=True)
    event: str = Field(max_length=64, index=True)
    actor_id: uuid.UUID | None = Field(default=None, index=True)
    subject_id: uuid.UUID | None = Field(default=None, index=True)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class AuditEventRead(BaseModel):
    id: int
    at: datetime
    event: str
    actor_id: uuid.UUID | None
    subject_id: uuid.UUID | None
    ip: str | None
    user_agent: str | None
    detail: dict[str, Any]
