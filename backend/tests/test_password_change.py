"""POST /users/me/password: the current password again; the other sessions end."""

from fastapi.testclient import TestClient

from app.models.user import User
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.account import all_event_text, events

NEW_PASSWORD = "a-brand-new-password"


def change(client: TestClient, headers: dict[str, str], current: str, new: str) -> int:
    response = client.post(
        api("/users/me/password"),
        headers=headers,
        json={"current_password": current, "new_password": new},
    )
    return response.status_code


def test_change_keeps_this_session_and_ends_the_others(client: TestClient, user: User) -> None:
    here = auth_header(login(client, user.email))
    elsewhere = login(client, user.email)

    assert change(client, here, PASSWORD, NEW_PASSWORD) == 204
    assert client.get(api("/users/me"), headers=here).status_code == 200
    assert client.get(api("/users/me"), headers=auth_header(elsewhere)).status_code == 401
    refresh = client.post(api("/auth/refresh"), json={"refresh_token": elsewhere["refresh_token"]})
    assert refresh.status_code == 401

    old = client.post(api("/auth/login"), data={"username": user.email, "password": PASSWORD})
    assert old.status_code == 401
    login(client, user.email, NEW_PASSWORD)
    [event] = events("auth.password_changed")
    assert event.detail == {"sessions": 1}
    assert NEW_PASSWORD not in all_event_text()


def test_wrong_current_password_is_400(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.post(
        api("/users/me/password"),
        headers=user_headers,
        json={"current_password": "not-my-password", "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Incorrect password"}
    login(client, user.email)  # unchanged


def test_weak_new_password_is_422(client: TestClient, user_headers: dict[str, str]) -> None:
    assert change(client, user_headers, PASSWORD, "short") == 422
    assert change(client, user_headers, PASSWORD, "é" * 37) == 422  # 74 bytes
    assert change(client, user_headers, "", NEW_PASSWORD) == 422


def test_needs_a_bearer_token(client: TestClient) -> None:
    assert change(client, {}, PASSWORD, NEW_PASSWORD) == 401
