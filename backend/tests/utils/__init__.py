"""Helpers shared by the tests."""

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import get_settings
from app.core.passwords import hash_password_sync
from app.core.permissions import Role
from app.crud import users
from app.crud.audit import SYSTEM
from app.db import transaction
from app.models.user import User

PASSWORD = "correct-horse-battery"


def api(path: str) -> str:
    return f"{get_settings().API_V1_STR}{path}"


def random_email() -> str:
    return f"u{uuid.uuid4().hex[:12]}@example.com"


def make_user(
    session: Session,
    *,
    role: Role = Role.USER,
    email: str | None = None,
    password: str = PASSWORD,
    is_active: bool = True,
    **fields: Any,
) -> User:
    user = transaction(
        users.create_user,
        session,
        email=email or random_email(),
        hashed_password=hash_password_sync(password),
        role=role,
        actor=SYSTEM,
        event="user.created",
        **fields,
    )
    if not is_active:
        user.is_active = False
        session.add(user)
        session.commit()
    return user


def login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post(api("/auth/login"), data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def auth_header(tokens: dict[str, Any] | str) -> dict[str, str]:
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}


def register(client: TestClient, email: str, password: str = PASSWORD, **fields: Any) -> Any:
    """POST /auth/register and return the response, whatever its status."""
    body = {"email": email, "password": password, **fields}
    return client.post(api("/auth/register"), json=body)


def refresh_tokens(client: TestClient, refresh_token: str) -> Any:
    """POST /auth/refresh and return the response, whatever its status."""
    return client.post(api("/auth/refresh"), json={"refresh_token": refresh_token})


def assert_unauthorized(response: Any) -> None:
    """A 401 that asks for a bearer token, as every refused credential must answer."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
