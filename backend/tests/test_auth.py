"""/auth: register, login, refresh, logout."""

from fastapi.testclient import TestClient

from app.models.user import User
from tests.utils import PASSWORD, api, auth_header, login


def test_register_returns_user_without_secrets(client: TestClient) -> None:
    response = client.post(
        api("/auth/register"),
        json={"email": "Ada@Example.com", "password": "securepassword123", "full_name": "Ada"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ada@example.com"
    assert body["role"] == "user"
    assert not {"password", "hashed_password", "mfa_secret"} & body.keys()


def test_register_ignores_role_in_body(client: TestClient) -> None:
    response = client.post(
        api("/auth/register"),
        json={"email": "eve@example.com", "password": "securepassword123", "role": "admin"},
    )
    assert response.status_code == 201
    assert response.json()["role"] == "user"


def test_login_refresh_logout(client: TestClient, user: User) -> None:
    tokens = login(client, user.email.upper())
    assert client.get(api("/users/me"), headers=auth_header(tokens)).json()["id"] == str(user.id)
    rotated = client.post(api("/auth/refresh"), json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()
    assert client.post(api("/auth/logout"), headers=auth_header(new)).status_code == 204
    after = client.get(api("/users/me"), headers=auth_header(new))
    assert after.status_code == 401
    assert after.headers["www-authenticate"] == "Bearer"


def test_wrong_password_and_unknown_email_answer_alike(client: TestClient, user: User) -> None:
    wrong = client.post(api("/auth/login"), data={"username": user.email, "password": "nope-nope"})
    unknown = client.post(
        api("/auth/login"), data={"username": "ghost@example.com", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "Incorrect email or password"}
