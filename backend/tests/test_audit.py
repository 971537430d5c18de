"""The audit log: one event per action, with actor and subject, readable by admins only."""

import json
from collections.abc import Callable

from fastapi.testclient import TestClient

from app.models.user import User
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.account import all_event_text
from tests.utils.account import events as stored_events


def events(client: TestClient, headers: dict[str, str], **filters: str) -> list[dict]:
    response = client.get(api("/audit-events"), params={"limit": 100, **filters}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def one(items: list[dict], name: str) -> dict:
    matching = [e for e in items if e["event"] == name]
    assert len(matching) == 1, (name, [e["event"] for e in items])
    return matching[0]


def test_account_and_session_events_have_actor_and_subject(
    client: TestClient, admin: User, admin_headers: dict[str, str], settings: Callable
) -> None:
    settings(MAX_FAILED_LOGINS=2, REFRESH_REUSE_GRACE_SECONDS=0)
    created = client.post(
        api("/auth/register"),
        json={"email": "audited@example.com", "password": PASSWORD},
        headers={"User-Agent": "audit-test"},
    ).json()
    uid = created["id"]
    client.post(api("/auth/login"), data={"username": "ghost@example.com", "password": "x" * 9})
    tokens = login(client, "audited@example.com")
    spent = tokens["refresh_token"]
    client.post(api("/auth/refresh"), json={"refresh_token": spent})
    client.post(api("/auth/refresh"), json={"refresh_token": spent})  # reuse
    fresh = login(client, "audited@example.com")
    client.post(api("/auth/logout"), headers=auth_header(fresh))
    for _ in range(2):
        client.post(api("/auth/login"), data={"username": "audited@example.com", "password": "no"})

    mine = events(client, admin_headers, subject_id=uid)
    registered = one(mine, "user.registered")
    assert registered["actor_id"] is None and registered["user_agent"] == "audit-test"
    assert registered["ip"] == "testclient"
    assert len([e for e in mine if e["event"] == "auth.login_succeeded"]) == 2
    assert one(mine, "auth.refresh_reuse_detected")["actor_id"] == uid
    assert one(mine, "auth.logout")["actor_id"] == uid
    assert len([e for e in mine if e["event"] == "auth.login_failed"]) == 2
    assert one(mine, "auth.locked_out")["subject_id"] == uid

    unknown = [
        e for e in events(client, admin_headers, event="auth.login_failed") if not e["subject_id"]
    ]
    assert unknown and unknown[0]["detail"]["email"] == "ghost@example.com"

    everything = json.dumps(events(client, admin_headers))
    assert PASSWORD not in everything and "x" * 9 not in everything
    for token in (tokens["access_token"], spent, fresh["refresh_token"]):
        assert token not in everything


def test_admin_actions_name_the_admin_and_the_user(
    client: TestClient,
    admin: User,
    admin_headers: dict[str, str],
    user_factory: Callable[..., User],
) -> None:
    target = user_factory(email="target@example.com")
    client.patch(api(f"/users/{target.id}"), json={"full_name": "T"}, headers=admin_headers)
    client.patch(api(f"/users/{target.id}"), json={"role": "moderator"}, headers=admin_headers)
    client.delete(api(f"/users/{target.id}"), headers=admin_headers)

    items = events(client, admin_headers, subject_id=str(target.id))
    for name in ("user.updated", "user.role_changed", "user.deleted"):
        event = one(items, name)
        assert event["actor_id"] == str(admin.id)
    role = one(items, "user.role_changed")["detail"]
    assert role == {"old": "user", "new": "moderator"}
    assert one(items, "user.updated")["detail"] == {"fields": ["full_name"]}
    assert [e["id"] for e in items] == sorted((e["id"] for e in items), reverse=True)


def test_filters_and_paging(client: TestClient, admin: User, admin_headers: dict[str, str]) -> None:
    for i in range(3):
        client.post(
            api("/auth/register"), json={"email": f"p{i}@example.com", "password": PASSWORD}
        )
    page = client.get(
        api("/audit-events"), params={"event": "user.registered", "limit": 2}, headers=admin_headers
    ).json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["limit"] == 2
    by_actor = events(client, admin_headers, actor_id=str(admin.id))
    assert all(e["actor_id"] == str(admin.id) for e in by_actor)


def test_audit_events_are_for_admins_only(
    client: TestClient, moderator_headers: dict[str, str], user_headers: dict[str, str]
) -> None:
    for headers in (moderator_headers, user_headers):
        assert client.get(api("/audit-events"), headers=headers).status_code == 403
    assert client.get(api("/audit-events")).status_code == 401


def test_a_failed_login_keeps_the_attempted_email_only_when_it_is_an_address(
    client: TestClient, settings: Callable[..., object]
) -> None:
    """People paste passwords into the email field: such a string is never stored."""
    settings(RATE_LIMIT_ENABLED=False)
    for username in ("Hunter2-Secret-pw!", "nobody@example.com"):
        client.post(api("/auth/login"), data={"username": username, "password": "whatever-pw"})
    failed = [e.detail for e in stored_events("auth.login_failed")]
    assert {"email": "nobody@example.com"} in failed
    assert "Hunter2-Secret-pw!" not in all_event_text()
