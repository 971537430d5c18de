"""The permission matrix: docs/roles-and-permissions.md's table, held against ROLE_PERMISSIONS
and against the API.

Every action is run as each of the three roles; the table says whether it must succeed or be
refused with 403, and a refused action must leave the data as it was.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.permissions import ROLE_PERMISSIONS, Permission, Role, has_permission
from app.db import get_engine
from app.models.user import User
from tests.utils import PASSWORD, api

# The permission table of docs/roles-and-permissions.md, copied literally.
README_TABLE = """
| action | user | moderator | admin |
|---|---|---|---|
| register, login, view and update own profile | ✓ | ✓ | ✓ |
| view all users, view other users | ✗ | ✓ | ✓ |
| update other users, change roles, delete users | ✗ | ✗ | ✓ |
| read audit events, unlock accounts | ✗ | ✗ | ✓ |
| import users from another system | ✗ | ✗ | ✓ |
| manage OAuth clients | ✗ | ✗ | ✓ |
| manage API resources, roles and organizations | ✗ | ✗ | ✓ |
"""

OWN = "register, login, view and update own profile"
VIEW = "view all users, view other users"
MANAGE = "update other users, change roles, delete users"
ADMIN = "read audit events, unlock accounts"
IMPORT = "import users from another system"
CLIENTS = "manage OAuth clients"
AUTHZ = "manage API resources, roles and organizations"

# What each row of the table means in ROLE_PERMISSIONS.
ROW_PERMISSIONS: dict[str, frozenset[Permission]] = {
    OWN: frozenset({Permission.ACCOUNT}),
    VIEW: frozenset({Permission.USERS_READ}),
    MANAGE: frozenset(
        {Permission.USERS_UPDATE, Permission.USERS_SET_ROLE, Permission.USERS_DELETE}
    ),
    ADMIN: frozenset({Permission.AUDIT_READ, Permission.USERS_UNLOCK}),
    IMPORT: frozenset({Permission.USERS_IMPORT}),
    CLIENTS: frozenset({Permission.CLIENTS_MANAGE}),
    AUTHZ: frozenset({Permission.AUTHZ_MANAGE}),
}


def parse_table(text: str) -> dict[str, dict[Role, bool]]:
    lines = [line.strip() for line in text.strip().splitlines()]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    roles = [Role(name) for name in header[1:]]
    table: dict[str, dict[Role, bool]] = {}
    for line in lines[2:]:
        action, *marks = (cell.strip() for cell in line.strip("|").split("|"))
        assert set(marks) <= {"✓", "✗"}, line
        table[action] = {role: mark == "✓" for role, mark in zip(roles, marks, strict=True)}
    return table


TABLE = parse_table(README_TABLE)


def test_readme_table_lists_every_role_and_row() -> None:
    assert set(TABLE) == set(ROW_PERMISSIONS)
    assert all(set(marks) == set(Role) for marks in TABLE.values())


def test_every_permission_appears_in_the_readme_table() -> None:
    documented = frozenset().union(*ROW_PERMISSIONS.values())
    assert documented == frozenset(Permission)


@pytest.mark.parametrize("role", list(Role))
def test_role_permissions_match_the_readme_table(role: Role) -> None:
    allowed_rows = [row for row, marks in TABLE.items() if marks[role]]
    expected = frozenset().union(*(ROW_PERMISSIONS[row] for row in allowed_rows))
    assert ROLE_PERMISSIONS[role] == expected


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_has_permission_follows_the_matrix(role: Role, permission: Permission) -> None:
    assert has_permission(role, permission) is (permission in ROLE_PERMISSIONS[role])


@dataclass(frozen=True)
class Action:
    """One request of the API, described so that it can be sent by any role."""

    name: str
    row: str
    method: str
    path: str  # may name {me}, {other} or {unknown}
    body: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    success: int = 200
    expect: dict[str, Any] = field(default_factory=dict)  # fields of the answer when allowed

    def send(self, client: TestClient, headers: dict[str, str], me: User, other: User) -> Any:
        path = self.path.format(me=me.id, other=other.id, unknown=uuid.uuid4())
        form = self.form and {k: v.format(email=me.email) for k, v in self.form.items()}
        return client.request(
            self.method, api(path), headers=headers, json=self.body, data=form or None
        )


ACTIONS = [
    Action("login", OWN, "POST", "/auth/login", form={"username": "{email}", "password": PASSWORD}),
    Action("view own profile", OWN, "GET", "/users/me"),
    Action("view self by id", OWN, "GET", "/users/{me}"),
    Action(
        "update own profile",
        OWN,
        "PATCH",
        "/users/me",
        body={"full_name": "Own Name"},
        expect={"full_name": "Own Name"},
    ),
    Action(
        "update self by id",
        OWN,
        "PATCH",
        "/users/{me}",
        body={"full_name": "Self Name"},
        expect={"full_name": "Self Name"},
    ),
    Action("list users", VIEW, "GET", "/users"),
    Action("view other user", VIEW, "GET", "/users/{other}"),
    Action("view unknown user", VIEW, "GET", "/users/{unknown}", success=404),
    Action(
        "update other user",
        MANAGE,
        "PATCH",
        "/users/{other}",
        body={"full_name": "Changed"},
        expect={"full_name": "Changed"},
    ),
    Action(
        "change other user's email",
        MANAGE,
        "PATCH",
        "/users/{other}",
        body={"email": "changed@example.com"},
        expect={"email": "changed@example.com"},
    ),
    Action(
        "change role",
        MANAGE,
        "PATCH",
        "/users/{other}",
        body={"role": "moderator"},
        expect={"role": "moderator"},
    ),
    Action(
        "deactivate other user",
        MANAGE,
        "PATCH",
        "/users/{other}",
        body={"is_active": False},
        expect={"is_active": False},
    ),
    Action(
        "set other user's password",
        MANAGE,
        "PATCH",
        "/users/{other}",
        body={"password": "brand-new-password"},
    ),
    Action("update unknown user", MANAGE, "PATCH", "/users/{unknown}", body={}, success=404),
    Action("delete other user", MANAGE, "DELETE", "/users/{other}", success=204),
    Action("delete unknown user", MANAGE, "DELETE", "/users/{unknown}", success=404),
    Action("read audit events", ADMIN, "GET", "/audit-events"),
    Action("unlock account", ADMIN, "POST", "/users/{other}/unlock", success=204),
    Action("unlock unknown account", ADMIN, "POST", "/users/{unknown}/unlock", success=404),
    Action("list OAuth clients", CLIENTS, "GET", "/clients"),
    Action(
        "import users",
        IMPORT,
        "POST",
        "/users/import",
        body=[{"email": "imported@example.com", "full_name": "Imported"}],
        expect={"results": [{"line": 1, "email": "imported@example.com", "status": "created"}]},
    ),
    Action(
        "register an OAuth client",
        CLIENTS,
        "POST",
        "/clients",
        body={"name": "App", "redirect_uris": ["https://app.example.com/cb"]},
        success=201,
        expect={"name": "App"},
    ),
]

CASES = [
    pytest.param(role, action, id=f"{role.value}-{action.name.replace(' ', '-')}")
    for action in ACTIONS
    for role in Role
]


def snapshot(user_id: uuid.UUID) -> dict[str, Any] | None:
    """The user's row as stored now, read in a short transaction of its own."""
    with Session(get_engine()) as session:
        row = session.get(User, user_id)
        return row.model_dump() if row else None


@pytest.fixture
def actor(request: pytest.FixtureRequest) -> Callable[[Role], tuple[User, dict[str, str]]]:
    def get(role: Role) -> tuple[User, dict[str, str]]:
        return request.getfixturevalue(role.value), request.getfixturevalue(f"{role.value}_headers")

    return get


@pytest.mark.parametrize(("role", "action"), CASES)
def test_action_is_allowed_or_refused_as_the_table_says(
    client: TestClient,
    user_factory: Callable[..., User],
    actor: Callable[[Role], tuple[User, dict[str, str]]],
    role: Role,
    action: Action,
) -> None:
    me, headers = actor(role)
    other = user_factory(Role.USER, email="other@example.com", full_name="Other")
    before = {me.id: snapshot(me.id), other.id: snapshot(other.id)}

    response = action.send(client, headers, me, other)

    if TABLE[action.row][role]:
        assert response.status_code == action.success, response.text
        body = response.json() if response.content else {}
        if action.success < 300:
            assert {k: body[k] for k in action.expect} == action.expect
    else:
        assert response.status_code == 403, response.text
        assert response.json() == {"detail": "Not enough permissions"}
        assert {me.id: snapshot(me.id), other.id: snapshot(other.id)} == before


def test_allowed_role_change_and_deletion_take_effect(
    client: TestClient, admin_headers: dict[str, str], user: User
) -> None:
    url = api(f"/users/{user.id}")
    assert client.patch(url, json={"role": "moderator"}, headers=admin_headers).status_code == 200
    assert (snapshot(user.id) or {})["role"] == Role.MODERATOR
    assert client.delete(url, headers=admin_headers).status_code == 204
    assert snapshot(user.id) is None


def test_password_set_by_admin_replaces_the_old_one(
    client: TestClient, admin_headers: dict[str, str], user: User
) -> None:
    url = api(f"/users/{user.id}")
    body = {"password": "brand-new-password"}
    assert client.patch(url, json=body, headers=admin_headers).status_code == 200
    old = client.post(api("/auth/login"), data={"username": user.email, "password": PASSWORD})
    assert old.status_code == 401
    new = client.post(
        api("/auth/login"), data={"username": user.email, "password": "brand-new-password"}
    )
    assert new.status_code == 200
