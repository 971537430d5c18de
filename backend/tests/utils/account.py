"""Helpers for the account-flow tests: fresh database sessions, time travel, audit reads."""

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from app.db import get_engine
from app.models.action_token import ActionToken, TokenPurpose
from app.models.audit import AuditEvent
from app.models.common import utcnow
from app.models.user import User
from tests.utils import api


def expire_tokens(purpose: TokenPurpose) -> int:
    """Time travel: every token of this purpose expired a second ago."""
    with Session(get_engine(), expire_on_commit=False) as session:
        result = session.exec(
            update(ActionToken)
            .where(col(ActionToken.purpose) == purpose)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
        return int(result.rowcount)


def tokens_of(purpose: TokenPurpose) -> list[ActionToken]:
    with Session(get_engine(), expire_on_commit=False) as session:
        rows = list(session.exec(select(ActionToken).where(ActionToken.purpose == purpose)).all())
        session.commit()
        return rows


def fresh_user(email: str) -> User:
    with Session(get_engine(), expire_on_commit=False) as session:
        user = session.exec(select(User).where(User.email == email)).one()
        session.commit()
        return user


def events(name: str) -> list[AuditEvent]:
    with Session(get_engine(), expire_on_commit=False) as session:
        rows = list(
            session.exec(
                select(AuditEvent).where(AuditEvent.event == name).order_by(col(AuditEvent.id))
            ).all()
        )
        session.commit()
        return rows


def all_event_text() -> str:
    """Every audit event, as text, to look for secrets in."""
    with Session(get_engine(), expire_on_commit=False) as session:
        rows = session.exec(select(AuditEvent)).all()
        session.commit()
        return "\n".join(repr(row.model_dump()) for row in rows)


def register(client: TestClient, email: str, password: str) -> dict[str, Any]:
    response = client.post(api("/auth/register"), json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return response.json()
