"""GET /users/me/sessions and DELETE /users/me/sessions/{id}."""

import uuid

from fastapi.testclient import TestClient

from app.models.user import User
from tests.utils import api, auth_header, login


def sessions(client: TestClient, headers: dict[str, str]) -> list[dict[str, object]]:
    response = client.get(api("/users/me/sessions"), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_lists_the_live_sessions_and_marks_the_current_one(client: TestClient, user: User) -> None:
    phone = login(client, user.email)
    laptop = client.post(
        api("/auth/login"),
        data={"username": user.email, "password": "correct-horse-battery"},
        headers={"User-Agent": "laptop-browser/1.0"},
    ).json()
    client.post(api("/auth/logout"), headers=auth_header(login(client, user.email)))

    listed = sessions(client, auth_header(laptop))
    assert len(listed) == 2
    assert set(listed[0]) == {
        "id", "kind", "client_name", "created_at", "last_used_at", "ip", "user_agent", "current"
    }  # fmt: skip
    assert {s["kind"] for s in listed} == {"api"}
    assert {s["client_name"] for s in listed} == {None}
    current = [s for s in listed if s["current"]]
    assert len(current) == 1
    assert current[0]["user_agent"] == "laptop-browser/1.0"
    text = str(listed)
    for token in (phone["access_token"], phone["refresh_token"], laptop["refresh_token"]):
        assert token not in text


def test_ending_another_session_stops_it_at_once(client: TestClient, user: User) -> None:
    here = auth_header(login(client, user.email))
    other = login(client, user.email)
    [other_id] = [s["id"] for s in sessions(client, here) if not s["current"]]

    assert client.delete(api(f"/users/me/sessions/{other_id}"), headers=here).status_code == 204
    assert client.get(api("/users/me"), headers=auth_header(other)).status_code == 401
    refresh = client.post(api("/auth/refresh"), json={"refresh_token": other["refresh_token"]})
    assert refresh.status_code == 401
    assert client.get(api("/users/me"), headers=here).status_code == 200
    assert client.delete(api(f"/users/me/sessions/{other_id}"), headers=here).status_code == 404


def test_the_current_session_can_be_ended(client: TestClient, user: User) -> None:
    here = auth_header(login(client, user.email))
    [mine] = sessions(client, here)
    assert client.delete(api(f"/users/me/sessions/{mine['id']}"), headers=here).status_code == 204
    assert client.get(api("/users/me"), headers=here).status_code == 401


def test_someone_elses_session_is_404(
    client: TestClient, user: User, moderator: User, moderator_headers: dict[str, str]
) -> None:
    user_headers = auth_header(login(client, user.email))
    [theirs] = sessions(client, user_headers)
    response = client.delete(api(f"/users/me/sessions/{theirs['id']}"), headers=moderator_headers)
    assert response.status_code == 404
    assert client.get(api("/users/me"), headers=user_headers).status_code == 200
    unknown = client.delete(api(f"/users/me/sessions/{uuid.uuid4()}"), headers=moderator_headers)
    assert unknown.status_code == 404
    bad = client.delete(api("/users/me/sessions/not-a-uuid"), headers=moderator_headers)
    assert bad.status_code == 422


def test_needs_a_bearer_token(client: TestClient) -> None:
    assert client.get(api("/users/me/sessions")).status_code == 401
    assert client.delete(api(f"/users/me/sessions/{uuid.uuid4()}")).status_code == 401
