"""Helpers of the import tests: POST /users/import as JSON Lines, and a user's stored row."""

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import get_engine
from app.models.user import User
from tests.utils import api


def jsonl(lines: list[Any]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def post_import(client: TestClient, headers: dict[str, str], lines: list[Any], **query: str) -> Any:
    """The raw answer of POST /users/import with `lines` as JSON Lines."""
    return client.post(
        api("/users/import"),
        content=jsonl(lines),
        params=query,
        headers={**headers, "Content-Type": "application/x-ndjson"},
    )


def imported(
    client: TestClient, headers: dict[str, str], lines: list[Any], **query: str
) -> list[dict[str, Any]]:
    """The per-line results of a successful import."""
    response = post_import(client, headers, lines, **query)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def stored(email: str) -> User | None:
    with Session(get_engine(), expire_on_commit=False) as session:
        user = session.exec(select(User).where(User.email == email)).first()
        session.commit()
        return user
