"""/users and /audit-events: profiles, the user list, admin updates, the last admin, the log."""

import base64
import json
import struct
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.core.permissions import Role
from app.db import get_engine
from app.models.user import User
from tests.utils import PASSWORD, api, assert_unauthorized, auth_header, login, register

Headers = dict[str, str]


def stored(user_id: uuid.UUID) -> User | None:
    """The user as stored now, read in a short transaction of its own."""
    with Session(get_engine(), expire_on_commit=False) as session:
        return session.get(User, user_id)


def active_admins() -> list[User]:
    with Session(get_engine()) as session:
        return list(
            session.exec(
                select(User).where(col(User.role) == Role.ADMIN, col(User.is_active).is_(True))
            ).all()
        )


# GET /users/me, PATCH /users/me


def test_read_me_returns_the_caller(client: TestClient, user: User, user_headers: Headers) -> None:
    response = client.get(api("/users/me"), headers=user_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(user.id)
    assert body["email"] == user.email
    assert body["role"] == "user"
    assert "hashed_password" not in body


def test_read_me_without_token_is_401(client: TestClient) -> None:
    assert_unauthorized(client.get(api("/users/me")))


def test_update_me_changes_name_and_email(
    client: TestClient, user: User, user_headers: Headers
) -> None:
    body = {
        "full_name": "New Name",
        "email": "New.Address@Example.com",
        "current_password": PASSWORD,
    }
    response = client.patch(api("/users/me"), json=body, headers=user_headers)
    assert response.status_code == 200
    assert response.json()["full_name"] == "New Name"
    # the new address is pending until its link is followed (tests/test_email_change.py)
    assert response.json()["email"] == user.email
    assert response.json()["pending_email"] == "new.address@example.com"
    assert login(client, user.email)["access_token"]


def test_update_me_ignores_role_and_is_active(
    client: TestClient, user: User, user_headers: Headers
) -> None:
    body = {"role": "admin", "is_active": False, "full_name": "Still User"}
    response = client.patch(api("/users/me"), json=body, headers=user_headers)
    assert response.status_code == 200
    assert response.json()["role"] == "user"
    assert response.json()["is_active"] is True
    row = stored(user.id)
    assert row is not None
    assert (row.role, row.is_active, row.full_name) == (Role.USER, True, "Still User")
    assert client.get(api("/users"), headers=user_headers).status_code == 403


def test_update_me_with_a_taken_email_is_409(
    client: TestClient, user_headers: Headers, moderator: User
) -> None:
    body = {"email": moderator.email.upper(), "current_password": PASSWORD}
    response = client.patch(api("/users/me"), json=body, headers=user_headers)
    assert response.status_code == 409


def test_update_me_with_own_email_in_other_case_is_200(
    client: TestClient, user: User, user_headers: Headers
) -> None:
    body = {"email": user.email.upper()}
    response = client.patch(api("/users/me"), json=body, headers=user_headers)
    assert response.status_code == 200
    assert response.json()["email"] == user.email


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "not-an-email"}, id="bad-email"),
        pytest.param({"email": None}, id="null-email"),
        pytest.param({"full_name": "x" * 256}, id="long-name"),
    ],
)
def test_update_me_with_invalid_body_is_422(
    client: TestClient, user: User, user_headers: Headers, body: dict[str, Any]
) -> None:
    response = client.patch(api("/users/me"), json=body, headers=user_headers)
    assert response.status_code == 422
    row = stored(user.id)
    assert row is not None
    assert row.email == user.email


# GET /users


@pytest.fixture
def population(user_factory: Callable[..., User]) -> list[User]:
    """Seven users of every role and state, created in this order."""
    return [
        user_factory(Role.USER, email="alice@example.com", full_name="Alice Liddell"),
        user_factory(Role.USER, email="bob@example.com", full_name="Bob 100%"),
        user_factory(Role.USER, email="carol@corp.io", full_name="Carol_Smith", is_active=False),
        user_factory(Role.MODERATOR, email="dave@example.com", full_name="Dave"),
        user_factory(Role.MODERATOR, email="erin@corp.io", full_name=None),
        user_factory(Role.ADMIN, email="frank@example.com", full_name="Frank"),
        user_factory(Role.ADMIN, email="grace@corp.io", full_name="Grace", is_active=False),
    ]


def emails(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["email"] for item in response.json()["items"]]


def test_list_users_returns_a_page(
    client: TestClient, population: list[User], moderator_headers: Headers
) -> None:
    response = client.get(api("/users"), headers=moderator_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == len(population) + 1
    assert body["skip"] == 0
    assert body["limit"] == 50
    assert {u.email for u in population} <= {item["email"] for item in body["items"]}
    assert all("hashed_password" not in item for item in body["items"])


def test_list_users_pages_cover_every_user_once(
    client: TestClient, population: list[User], admin_headers: Headers
) -> None:
    seen: list[str] = []
    for skip in range(0, 8, 3):
        response = client.get(
            api("/users"), params={"skip": skip, "limit": 3}, headers=admin_headers
        )
        body = response.json()
        assert (body["skip"], body["limit"], body["total"]) == (skip, 3, 8)
        assert len(body["items"]) == min(3, 8 - skip)
        seen += [item["id"] for item in body["items"]]
    assert len(seen) == len(set(seen)) == 8
    past_end = client.get(api("/users"), params={"skip": 8}, headers=admin_headers).json()
    assert past_end["items"] == []
    assert past_end["total"] == 8


def same_created_at(db: Session, users: list[User]) -> None:
    """Give `users` one creation time, so that only their ids order them."""
    at = users[0].created_at
    for row in users:
        row.created_at = at
        db.add(row)
    db.commit()


def in_list_order(users: list[User]) -> list[str]:
    return [str(u.id) for u in sorted(users, key=lambda u: (u.created_at, u.id))]


def walk(client: TestClient, headers: Headers, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every page of GET /users by next_cursor, checking each page's shape."""
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": limit} | ({"cursor": cursor} if cursor else {})
        response = client.get(api("/users"), params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        assert len(pages) <= 20, "the cursors never reached the last page"
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(body["items"]) == limit  # only the last page is short, or empty


@pytest.mark.parametrize(
    "params",
    [{}, {"role": "user"}, {"is_active": "true"}, {"q": "example"}, {"role": "admin"}],
    ids=str,
)
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_cursor_pages_cover_every_user_once_in_order(
    client: TestClient,
    db: Session,
    population: list[User],
    admin: User,
    admin_headers: Headers,
    params: dict[str, str],
    limit: int,
) -> None:
    everyone = [admin, *population]
    same_created_at(db, population[1:6])  # ties broken by id, on both sides of page breaks
    expected = client.get(api("/users"), params={**params, "limit": 100}, headers=admin_headers)
    assert expected.json()["next_cursor"] is None
    expected_ids = [item["id"] for item in expected.json()["items"]]
    matching = {u.email for u in everyone} & set(emails(expected))
    assert expected_ids == in_list_order([u for u in everyone if u.email in matching])

    pages = walk(client, admin_headers, limit, **params)
    seen = [item["id"] for page in pages for item in page["items"]]
    assert seen == expected_ids  # each once, in the list's order
    assert {page["total"] for page in pages} == {len(expected_ids)}
    assert all(len(page["items"]) <= limit for page in pages)


def test_a_full_last_page_has_no_next_cursor_only_when_nothing_follows(
    client: TestClient, population: list[User], admin_headers: Headers
) -> None:
    everyone = client.get(api("/users"), params={"limit": 8}, headers=admin_headers).json()
    assert len(everyone["items"]) == 8
    assert everyone["next_cursor"] is None
    seven = client.get(api("/users"), params={"limit": 7}, headers=admin_headers).json()
    assert seven["next_cursor"] is not None
    last = client.get(
        api("/users"), params={"limit": 7, "cursor": seven["next_cursor"]}, headers=admin_headers
    ).json()
    assert [item["id"] for item in last["items"]] == [everyone["items"][7]["id"]]
    assert last["next_cursor"] is None


def test_skip_and_cursor_together(
    client: TestClient, population: list[User], admin_headers: Headers
) -> None:
    ids = [i["id"] for i in client.get(api("/users"), headers=admin_headers).json()["items"]]
    offset = client.get(api("/users"), params={"skip": 2, "limit": 2}, headers=admin_headers)
    assert [item["id"] for item in offset.json()["items"]] == ids[2:4]
    after = {"cursor": offset.json()["next_cursor"], "limit": 2}
    continued = client.get(api("/users"), params=after, headers=admin_headers).json()
    assert [item["id"] for item in continued["items"]] == ids[4:6]
    skipped = client.get(api("/users"), params={**after, "skip": 1}, headers=admin_headers)
    assert [item["id"] for item in skipped.json()["items"]] == ids[5:7]
    assert skipped.json()["skip"] == 1


def test_cursor_pages_follow_changes_between_pages(
    client: TestClient,
    db: Session,
    population: list[User],
    user_factory: Callable[..., User],
    admin_headers: Headers,
) -> None:
    """A cursor is a position, not a row: the next page starts right after it whatever
    happened meanwhile, with the filters of its own request."""
    active = {"limit": 3, "is_active": "true"}
    first = client.get(api("/users"), params=active, headers=admin_headers).json()
    assert emails_of(first) == ["alice@example.com", "bob@example.com", "dave@example.com"]
    # the page's last user is deleted, the next one deactivated, a new one created
    dave, erin = population[3], population[4]
    assert client.delete(api(f"/users/{dave.id}"), headers=admin_headers).status_code == 204
    erin.is_active = False
    db.add(erin)
    db.commit()
    user_factory(Role.USER, email="zoe@example.com")

    query = {**active, "cursor": first["next_cursor"]}
    second = client.get(api("/users"), params=query, headers=admin_headers).json()
    assert emails_of(second) == ["frank@example.com", "admin@example.com", "zoe@example.com"]
    assert second["total"] == 5
    # the same cursor with other filters: the users matching them after that position
    query = {"role": "moderator", "cursor": first["next_cursor"]}
    moderators = client.get(api("/users"), params=query, headers=admin_headers).json()
    assert emails_of(moderators) == ["erin@corp.io"]
    assert moderators["next_cursor"] is None
    query = {"q": "example.com", "limit": 2, "cursor": first["next_cursor"]}
    named = client.get(api("/users"), params=query, headers=admin_headers).json()
    assert emails_of(named) == ["frank@example.com", "admin@example.com"]
    assert named["total"] == 5  # alice, bob, frank, admin, zoe
    query = {**query, "cursor": named["next_cursor"]}
    assert emails_of(client.get(api("/users"), params=query, headers=admin_headers).json()) == [
        "zoe@example.com"
    ]


def emails_of(body: dict[str, Any]) -> list[str]:
    return [item["email"] for item in body["items"]]


def test_list_items_are_the_users_profiles(
    client: TestClient, population: list[User], admin_headers: Headers
) -> None:
    page = client.get(api("/users"), headers=admin_headers).json()
    for item in page["items"]:
        assert item == client.get(api(f"/users/{item['id']}"), headers=admin_headers).json()
    schema = client.get(api("/openapi.json")).json()["components"]["schemas"]
    assert "next_cursor" in schema["CursorPage_UserRead_"]["properties"]


def _cursor(version: int, micros: int, raw_id: bytes = bytes(16)) -> str:
    raw = struct.pack(">cq16s", bytes([version]), micros, raw_id)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not-a-cursor",
        "é" * 34,
        "AQ" + "%" * 32,
        _cursor(1, 0)[:-2],  # cut short
        _cursor(1, 0) + "AA",  # too long for its bytes
        _cursor(1, 0) + "=",  # another spelling of the same bytes
        _cursor(2, 0),  # an unknown version
        _cursor(1, 2**62),  # no such time
        "A" * 65,  # over the parameter's length
    ],
)
def test_a_malformed_cursor_is_422(client: TestClient, admin_headers: Headers, cursor: str) -> None:
    response = client.get(api("/users"), params={"cursor": cursor}, headers=admin_headers)
    assert response.status_code == 422, response.text


def test_a_wellformed_cursor_anywhere_is_a_page(
    client: TestClient, population: list[User], admin_headers: Headers
) -> None:
    before_all = client.get(api("/users"), params={"cursor": _cursor(1, -(2**50))},
                            headers=admin_headers)  # fmt: skip
    assert len(before_all.json()["items"]) == 8
    after_all = client.get(api("/users"), params={"cursor": _cursor(1, 2**55)},
                           headers=admin_headers)  # fmt: skip
    assert after_all.json()["items"] == []
    assert after_all.json()["total"] == 8
    assert after_all.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"role": "moderator"}, {"moderator@example.com", "dave@example.com", "erin@corp.io"}),
        ({"role": "admin"}, {"frank@example.com", "grace@corp.io"}),
        ({"is_active": "false"}, {"carol@corp.io", "grace@corp.io"}),
        ({"role": "admin", "is_active": "true"}, {"frank@example.com"}),
        ({"q": "corp.io"}, {"carol@corp.io", "erin@corp.io", "grace@corp.io"}),
        ({"q": "LIDDELL"}, {"alice@example.com"}),
        ({"q": "100%"}, {"bob@example.com"}),
        ({"q": "%"}, {"bob@example.com"}),
        ({"q": "_"}, {"carol@corp.io"}),
        ({"q": "nobody-matches"}, set()),
        ({"q": "corp", "role": "moderator"}, {"erin@corp.io"}),
    ],
)
def test_list_users_filters(
    client: TestClient,
    population: list[User],
    moderator_headers: Headers,
    params: dict[str, str],
    expected: set[str],
) -> None:
    response = client.get(api("/users"), params=params, headers=moderator_headers)
    assert set(emails(response)) == expected
    assert response.json()["total"] == len(expected)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": -1},
        {"skip": -1},
        {"limit": "ten"},
        {"role": "superuser"},
        {"is_active": "maybe"},
        {"q": "x" * 321},
    ],
    ids=str,
)
def test_list_users_with_bad_parameters_is_422(
    client: TestClient, moderator_headers: Headers, params: dict[str, Any]
) -> None:
    assert client.get(api("/users"), params=params, headers=moderator_headers).status_code == 422


@pytest.mark.parametrize("limit", [1, 100])
def test_list_users_accepts_limit_bounds(
    client: TestClient, population: list[User], admin_headers: Headers, limit: int
) -> None:
    response = client.get(api("/users"), params={"limit": limit}, headers=admin_headers)
    assert response.status_code == 200
    assert len(response.json()["items"]) == min(limit, 8)


def test_list_users_as_plain_user_is_403(client: TestClient, user_headers: Headers) -> None:
    response = client.get(api("/users"), headers=user_headers)
    assert response.status_code == 403


def test_list_users_without_token_is_401(client: TestClient) -> None:
    assert_unauthorized(client.get(api("/users")))


# GET /users/{id}


def test_read_user_by_id_as_self_is_200(
    client: TestClient, user: User, user_headers: Headers
) -> None:
    response = client.get(api(f"/users/{user.id}"), headers=user_headers)
    assert response.status_code == 200
    assert response.json()["email"] == user.email


@pytest.mark.parametrize("exists", [True, False], ids=["existing", "unknown"])
def test_read_other_user_as_plain_user_is_403_whether_or_not_it_exists(
    client: TestClient, user_headers: Headers, moderator: User, exists: bool
) -> None:
    target = moderator.id if exists else uuid.uuid4()
    response = client.get(api(f"/users/{target}"), headers=user_headers)
    assert response.status_code == 403


def test_read_other_user_as_moderator_is_200(
    client: TestClient, user: User, moderator_headers: Headers
) -> None:
    response = client.get(api(f"/users/{user.id}"), headers=moderator_headers)
    assert response.status_code == 200
    assert response.json()["id"] == str(user.id)


def test_read_unknown_user_is_404(client: TestClient, moderator_headers: Headers) -> None:
    response = client.get(api(f"/users/{uuid.uuid4()}"), headers=moderator_headers)
    assert response.status_code == 404


def test_read_user_with_malformed_id_is_422(client: TestClient, admin_headers: Headers) -> None:
    assert client.get(api("/users/not-a-uuid"), headers=admin_headers).status_code == 422


def test_read_user_without_token_is_401(client: TestClient, user: User) -> None:
    assert_unauthorized(client.get(api(f"/users/{user.id}")))


# PATCH /users/{id}


@pytest.mark.parametrize(
    "body",
    [
        {"role": "admin"},
        {"role": "user"},
        {"is_active": False},
        {"is_active": True},
        {"password": "a-new-password"},
        {"full_name": "Sneaky", "role": "moderator"},
    ],
    ids=str,
)
@pytest.mark.parametrize("who", ["user", "moderator"])
def test_non_admin_sending_privileged_fields_for_self_is_403_and_changes_nothing(
    client: TestClient, request: pytest.FixtureRequest, who: str, body: dict[str, Any]
) -> None:
    me: User = request.getfixturevalue(who)
    headers: Headers = request.getfixturevalue(f"{who}_headers")
    before = stored(me.id)
    response = client.patch(api(f"/users/{me.id}"), json=body, headers=headers)
    assert response.status_code == 403
    after = stored(me.id)
    assert after is not None and before is not None
    assert after.model_dump() == before.model_dump()
    assert login(client, me.email, PASSWORD)["access_token"]


def test_self_update_by_id_changes_profile_fields(
    client: TestClient, user: User, user_headers: Headers
) -> None:
    body = {"full_name": "Renamed", "email": "renamed@example.com", "current_password": PASSWORD}
    response = client.patch(api(f"/users/{user.id}"), json=body, headers=user_headers)
    assert response.status_code == 200
    assert response.json()["pending_email"] == "renamed@example.com"
    assert response.json()["email"] == user.email
    assert response.json()["full_name"] == "Renamed"


def test_admin_updates_every_field_of_another_user(
    client: TestClient, user: User, admin_headers: Headers
) -> None:
    body = {
        "full_name": "Promoted",
        "email": "promoted@example.com",
        "role": "moderator",
        "is_active": True,
        "password": "another-password",
    }
    response = client.patch(api(f"/users/{user.id}"), json=body, headers=admin_headers)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["full_name"], answer["email"], answer["role"]) == (
        "Promoted",
        "promoted@example.com",
        "moderator",
    )
    assert login(client, "promoted@example.com", "another-password")["access_token"]


def test_admin_update_of_unknown_user_is_404(client: TestClient, admin_headers: Headers) -> None:
    response = client.patch(
        api(f"/users/{uuid.uuid4()}"), json={"full_name": "x"}, headers=admin_headers
    )
    assert response.status_code == 404


def test_admin_update_to_a_taken_email_is_409(
    client: TestClient, user: User, moderator: User, admin_headers: Headers
) -> None:
    body = {"email": moderator.email.upper()}
    response = client.patch(api(f"/users/{user.id}"), json=body, headers=admin_headers)
    assert response.status_code == 409
    row = stored(user.id)
    assert row is not None and row.email == user.email


@pytest.mark.parametrize(
    "body",
    [
        {"role": "superuser"},
        {"role": None},
        {"is_active": None},
        {"is_active": "sometimes"},
        {"email": "nope"},
        {"password": "short"},
        {"password": "é" * 40},
        {"password": None},
        {"full_name": "x" * 256},
    ],
    ids=str,
)
def test_admin_update_with_invalid_body_is_422(
    client: TestClient, user: User, admin_headers: Headers, body: dict[str, Any]
) -> None:
    before = stored(user.id)
    response = client.patch(api(f"/users/{user.id}"), json=body, headers=admin_headers)
    assert response.status_code == 422
    after = stored(user.id)
    assert before is not None and after is not None
    assert after.model_dump() == before.model_dump()


def test_update_user_without_token_is_401(client: TestClient, user: User) -> None:
    assert_unauthorized(client.patch(api(f"/users/{user.id}"), json={"full_name": "x"}))


def test_moderator_updating_another_user_is_403(
    client: TestClient, user: User, moderator_headers: Headers
) -> None:
    body = {"full_name": "Changed"}
    response = client.patch(api(f"/users/{user.id}"), json=body, headers=moderator_headers)
    assert response.status_code == 403


# DELETE /users/{id}


def test_admin_deletes_a_user(client: TestClient, user: User, admin_headers: Headers) -> None:
    assert client.delete(api(f"/users/{user.id}"), headers=admin_headers).status_code == 204
    assert stored(user.id) is None
    assert client.get(api(f"/users/{user.id}"), headers=admin_headers).status_code == 404
    assert client.delete(api(f"/users/{user.id}"), headers=admin_headers).status_code == 404
    assert register(client, user.email).status_code == 201  # the email is free again


def test_admin_deletes_another_admin(
    client: TestClient, user_factory: Callable[..., User], admin_headers: Headers
) -> None:
    other = user_factory(Role.ADMIN)
    assert client.delete(api(f"/users/{other.id}"), headers=admin_headers).status_code == 204


@pytest.mark.parametrize("who", ["user", "moderator"])
def test_non_admin_deleting_is_403(
    client: TestClient, request: pytest.FixtureRequest, admin: User, who: str
) -> None:
    headers: Headers = request.getfixturevalue(f"{who}_headers")
    me: User = request.getfixturevalue(who)
    for target in (admin.id, me.id, uuid.uuid4()):
        assert client.delete(api(f"/users/{target}"), headers=headers).status_code == 403
    assert stored(admin.id) is not None
    assert stored(me.id) is not None


def test_delete_without_token_is_401(client: TestClient, user: User) -> None:
    assert_unauthorized(client.delete(api(f"/users/{user.id}")))


# The last active admin


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("PATCH", {"role": "user"}),
        ("PATCH", {"role": "moderator"}),
        ("PATCH", {"is_active": False}),
        ("PATCH", {"full_name": "Gone", "role": "user"}),
        ("DELETE", None),
    ],
    ids=["demote-to-user", "demote-to-moderator", "deactivate", "rename-and-demote", "delete"],
)
def test_last_active_admin_cannot_be_removed(
    client: TestClient,
    admin: User,
    admin_headers: Headers,
    user_factory: Callable[..., User],
    method: str,
    body: dict[str, Any] | None,
) -> None:
    user_factory(Role.ADMIN, is_active=False)  # an inactive admin does not count
    before = stored(admin.id)
    response = client.request(method, api(f"/users/{admin.id}"), json=body, headers=admin_headers)
    assert response.status_code == 409
    after = stored(admin.id)
    assert before is not None and after is not None
    assert after.model_dump() == before.model_dump()
    assert client.get(api("/users/me"), headers=admin_headers).status_code == 200


def test_an_admin_can_step_down_while_another_admin_remains(
    client: TestClient, admin: User, admin_headers: Headers, user_factory: Callable[..., User]
) -> None:
    other = user_factory(Role.ADMIN)
    url = api(f"/users/{admin.id}")
    assert client.patch(url, json={"role": "user"}, headers=admin_headers).status_code == 200
    assert [a.id for a in active_admins()] == [other.id]
    other_headers = auth_header(login(client, other.email))
    response = client.patch(api(f"/users/{other.id}"), json={"role": "user"}, headers=other_headers)
    assert response.status_code == 409


def test_admins_demoting_each_other_at_once_leave_an_active_admin(
    client: TestClient, user_factory: Callable[..., User]
) -> None:
    admins = [user_factory(Role.ADMIN) for _ in range(4)]
    headers = [auth_header(login(client, a.email)) for a in admins]
    barrier = threading.Barrier(len(admins))

    def demote_next(i: int) -> int:
        target = admins[(i + 1) % len(admins)]
        barrier.wait()
        url = api(f"/users/{target.id}")
        return client.patch(url, json={"role": "user"}, headers=headers[i]).status_code

    with ThreadPoolExecutor(len(admins)) as pool:
        statuses = list(pool.map(demote_next, range(len(admins))))

    assert set(statuses) <= {200, 403, 409}
    assert len(active_admins()) >= 1
    assert statuses.count(200) == len(admins) - len(active_admins())


# Changes to role, active flag and sessions apply on the very next request


def test_promotion_and_demotion_apply_to_the_same_token(
    client: TestClient, user: User, user_headers: Headers, admin_headers: Headers
) -> None:
    url = api(f"/users/{user.id}")
    assert client.get(api("/users"), headers=user_headers).status_code == 403

    assert client.patch(url, json={"role": "moderator"}, headers=admin_headers).status_code == 200
    assert client.get(api("/users"), headers=user_headers).status_code == 200

    assert client.patch(url, json={"role": "user"}, headers=admin_headers).status_code == 200
    assert client.get(api("/users"), headers=user_headers).status_code == 403


def test_demoted_admin_loses_admin_actions_at_once(
    client: TestClient,
    admin: User,
    admin_headers: Headers,
    user_factory: Callable[..., User],
) -> None:
    other = user_factory(Role.ADMIN)
    other_headers = auth_header(login(client, other.email))
    assert client.get(api("/audit-events"), headers=admin_headers).status_code == 200
    url = api(f"/users/{admin.id}")
    assert client.patch(url, json={"role": "moderator"}, headers=other_headers).status_code == 200
    assert client.get(api("/audit-events"), headers=admin_headers).status_code == 403
    assert client.get(api("/users"), headers=admin_headers).status_code == 200


def test_deactivation_applies_at_once(
    client: TestClient, user: User, user_headers: Headers, admin_headers: Headers
) -> None:
    url = api(f"/users/{user.id}")
    assert client.patch(url, json={"is_active": False}, headers=admin_headers).status_code == 200
    assert_unauthorized(client.get(api("/users/me"), headers=user_headers))
    response = client.post(api("/auth/login"), data={"username": user.email, "password": PASSWORD})
    assert response.status_code == 403


def test_password_set_by_admin_ends_the_users_sessions(
    client: TestClient, user: User, user_headers: Headers, admin_headers: Headers
) -> None:
    body = {"password": "a-brand-new-password"}
    assert (
        client.patch(api(f"/users/{user.id}"), json=body, headers=admin_headers).status_code == 200
    )
    assert_unauthorized(client.get(api("/users/me"), headers=user_headers))


# GET /audit-events


def test_audit_events_record_admin_actions_newest_first(
    client: TestClient, admin: User, user: User, admin_headers: Headers
) -> None:
    url = api(f"/users/{user.id}")
    client.patch(url, json={"role": "moderator"}, headers=admin_headers)
    client.patch(
        url, json={"full_name": "Renamed", "password": "new-password-1"}, headers=admin_headers
    )
    client.delete(url, headers=admin_headers)

    response = client.get(
        api("/audit-events"), params={"subject_id": str(user.id)}, headers=admin_headers
    )

    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"items", "total", "skip", "limit"}
    events = [e["event"] for e in page["items"]]
    assert events[:3] == ["user.deleted", "user.updated", "user.role_changed"]
    newest = page["items"][:3]
    assert all(e["actor_id"] == str(admin.id) for e in newest)
    assert all(e["subject_id"] == str(user.id) for e in page["items"])
    assert newest[2]["detail"] == {"old": "user", "new": "moderator"}
    assert newest[1]["detail"] == {"fields": ["full_name", "password"]}
    assert set(newest[0]) == {
        "id",
        "at",
        "event",
        "actor_id",
        "subject_id",
        "ip",
        "user_agent",
        "detail",
    }
    ids = [e["id"] for e in page["items"]]
    assert ids == sorted(ids, reverse=True)
    assert "new-password-1" not in json.dumps(page)


def test_audit_events_filter_by_event_and_actor(
    client: TestClient, admin: User, user: User, admin_headers: Headers
) -> None:
    client.patch(api(f"/users/{user.id}"), json={"role": "moderator"}, headers=admin_headers)

    by_event = client.get(
        api("/audit-events"), params={"event": "user.role_changed"}, headers=admin_headers
    ).json()
    assert [e["subject_id"] for e in by_event["items"]] == [str(user.id)]
    assert by_event["total"] == 1

    by_actor = client.get(
        api("/audit-events"), params={"actor_id": str(admin.id)}, headers=admin_headers
    ).json()
    assert {e["event"] for e in by_actor["items"]} == {"auth.login_succeeded", "user.role_changed"}

    nothing = client.get(
        api("/audit-events"), params={"actor_id": str(uuid.uuid4())}, headers=admin_headers
    ).json()
    assert nothing == {"items": [], "total": 0, "skip": 0, "limit": 50}


def test_audit_events_page(client: TestClient, user: User, admin_headers: Headers) -> None:
    for name in ("a", "b", "c"):
        client.patch(api(f"/users/{user.id}"), json={"full_name": name}, headers=admin_headers)
    params = {"event": "user.updated", "limit": 2, "skip": 1}
    page = client.get(api("/audit-events"), params=params, headers=admin_headers).json()
    assert (page["total"], page["skip"], page["limit"], len(page["items"])) == (3, 1, 2, 2)


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"skip": -1}, {"actor_id": "nope"}, {"subject_id": "1"}],
    ids=str,
)
def test_audit_events_with_bad_parameters_is_422(
    client: TestClient, admin_headers: Headers, params: dict[str, Any]
) -> None:
    assert client.get(api("/audit-events"), params=params, headers=admin_headers).status_code == 422


@pytest.mark.parametrize("who", ["user", "moderator"])
def test_audit_events_for_non_admin_is_403(
    client: TestClient, request: pytest.FixtureRequest, who: str
) -> None:
    headers: Headers = request.getfixturevalue(f"{who}_headers")
    assert client.get(api("/audit-events"), headers=headers).status_code == 403


def test_audit_events_without_token_is_401(client: TestClient) -> None:
    assert_unauthorized(client.get(api("/audit-events")))
