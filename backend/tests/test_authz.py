"""The product's authorization (AUTHZ.md): API resources, roles, their assignments to users and
confidential clients, effective permissions, and the check endpoint."""

import base64
import threading
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.crud import authz
from app.db import get_engine, transaction
from app.models.audit import AuditEvent
from app.models.authz import BUILTIN_RESOURCE_ID, RolePermission, UserRole
from app.models.organization import Membership, MembershipRole, Organization
from app.models.user import User
from app.oauth.discovery import issuer
from tests.utils import api, auth_header, login

ORDERS = "https://api.example.com/orders"


def create_resource(
    client: TestClient, headers: dict[str, str], identifier: str = ORDERS, *names: str
) -> dict[str, Any]:
    permissions = [
        {"name": name, "description": f"may {name}"} for name in names or ("read", "write")
    ]
    body = {"identifier": identifier, "name": "Orders", "permissions": permissions}
    response = client.post(api("/resources"), json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def create_role(
    client: TestClient, headers: dict[str, str], name: str, *permissions: tuple[str, str]
) -> dict[str, Any]:
    body = {"name": name, "permissions": [{"resource": r, "name": n} for r, n in permissions]}
    response = client.post(api("/roles"), json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def permissions(
    client: TestClient, headers: dict[str, str], user_id: uuid.UUID, **query: str
) -> Any:
    return client.get(api(f"/users/{user_id}/permissions"), params=query, headers=headers)


def events(db: Session, name: str) -> list[AuditEvent]:
    db.expire_all()
    return list(db.exec(select(AuditEvent).where(col(AuditEvent.event) == name)).all())


# Resources


def test_resources_are_created_listed_and_the_built_in_one_comes_first(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    created = create_resource(client, admin_headers)
    assert created["identifier"] == ORDERS and created["builtin"] is False
    assert {p["name"] for p in created["permissions"]} == {"read", "write"}

    page = client.get(api("/resources"), headers=admin_headers).json()
    assert page["total"] == 2
    builtin, mine = page["items"]
    assert builtin["id"] == str(BUILTIN_RESOURCE_ID) and builtin["identifier"] == issuer()
    assert {"users:read", "account", "authz:manage", "org:members:manage"} <= {
        p["name"] for p in builtin["permissions"]
    }
    assert mine["id"] == created["id"]
    assert client.get(api(f"/resources/{created['id']}"), headers=admin_headers).json() == created
    assert [e.detail["identifier"] for e in events(db, "authz.resource_created")] == [ORDERS]


def test_resource_pages_follow_their_cursor(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    for n in range(4):
        create_resource(client, admin_headers, f"{ORDERS}/{n}")
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(api("/resources"), params=params, headers=admin_headers).json()
        seen += [item["identifier"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [issuer(), *(f"{ORDERS}/{n}" for n in range(4))]


@pytest.mark.parametrize(
    "body",
    [
        {"identifier": "not a uri", "name": "x"},
        {"identifier": "https://a.example/#frag", "name": "x"},
        {"identifier": ORDERS, "name": ""},
        {"identifier": ORDERS, "name": "x", "permissions": [{"name": "bad name"}]},
        {"identifier": ORDERS, "name": "x", "permissions": [{"name": "a"}, {"name": "a"}]},
        {"identifier": ORDERS, "name": "x", "permissions": [{"name": f"p{n}"} for n in range(501)]},
    ],
)
def test_a_bad_resource_is_422(
    client: TestClient, admin_headers: dict[str, str], body: dict[str, Any]
) -> None:
    assert client.post(api("/resources"), json=body, headers=admin_headers).status_code == 422


def test_a_duplicate_identifier_is_409_and_the_issuer_is_taken(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    create_resource(client, admin_headers)
    for identifier in (ORDERS, issuer()):
        body = {"identifier": identifier, "name": "again"}
        assert client.post(api("/resources"), json=body, headers=admin_headers).status_code == 409


def test_the_built_in_resource_cannot_be_changed_or_deleted(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    path = api(f"/resources/{BUILTIN_RESOURCE_ID}")
    assert client.get(path, headers=admin_headers).json()["builtin"] is True
    assert client.patch(path, json={"name": "x"}, headers=admin_headers).status_code == 403
    assert client.delete(path, headers=admin_headers).status_code == 403


def test_unknown_ids_are_404(client: TestClient, admin_headers: dict[str, str]) -> None:
    unknown = uuid.uuid4()
    for path in (f"/resources/{unknown}", f"/roles/{unknown}", f"/users/{unknown}/roles"):
        assert client.get(api(path), headers=admin_headers).status_code == 404, path
    assert client.delete(api(f"/roles/{unknown}"), headers=admin_headers).status_code == 404
    assert client.get(api("/clients/nope/roles"), headers=admin_headers).status_code == 404


def test_only_authz_managers_reach_resources_and_roles(
    client: TestClient, user_headers: dict[str, str], moderator_headers: dict[str, str]
) -> None:
    for headers in (user_headers, moderator_headers):
        assert client.get(api("/resources"), headers=headers).status_code == 403
        assert client.post(api("/roles"), json={"name": "x"}, headers=headers).status_code == 403
    assert client.get(api("/roles")).status_code == 401


def test_a_permission_dropped_from_a_resource_leaves_every_role(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    resource = create_resource(client, admin_headers, ORDERS, "read", "write")
    role = create_role(client, admin_headers, "editor", (ORDERS, "read"), (ORDERS, "write"))
    body = {"permissions": [{"name": "read", "description": "reads"}, {"name": "ship"}]}
    response = client.patch(api(f"/resources/{resource['id']}"), json=body, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert {p["name"]: p["description"] for p in response.json()["permissions"]} == {
        "read": "reads",
        "ship": "",
    }
    role_now = client.get(api(f"/roles/{role['id']}"), headers=admin_headers).json()
    assert role_now["permissions"] == [{"resource": ORDERS, "name": "read"}]

    assert (
        client.delete(api(f"/resources/{resource['id']}"), headers=admin_headers).status_code == 204
    )
    role_now = client.get(api(f"/roles/{role['id']}"), headers=admin_headers).json()
    assert role_now["permissions"] == []
    db.expire_all()
    assert db.exec(select(RolePermission)).all() == []


# Roles


def test_a_role_names_permissions_that_exist(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    create_resource(client, admin_headers)

    def refused(permissions: list[dict[str, str]]) -> str:
        body = {"name": "r", "permissions": permissions}
        response = client.post(api("/roles"), json=body, headers=admin_headers)
        assert response.status_code == 422, response.text
        return str(response.json()["detail"])

    assert "delete" in refused([{"resource": ORDERS, "name": "delete"}])
    assert "https://elsewhere.example" in refused(
        [{"resource": "https://elsewhere.example", "name": "read"}]
    )
    for matrix in ("users:read", "account", "authz:manage"):
        assert matrix in refused([{"resource": issuer(), "name": matrix}])
    role = create_role(client, admin_headers, "org-admin", (issuer(), "org:members:manage"))
    assert role["permissions"] == [{"resource": issuer(), "name": "org:members:manage"}]


def test_role_names_are_unique_and_checked(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    role = create_role(client, admin_headers, "editor")
    other = create_role(client, admin_headers, "viewer")
    assert (
        client.post(api("/roles"), json={"name": "editor"}, headers=admin_headers).status_code
        == 409
    )
    rename = client.patch(
        api(f"/roles/{other['id']}"), json={"name": "editor"}, headers=admin_headers
    )
    assert rename.status_code == 409
    for bad in ("", "has space", "x" * 65, "é"):
        assert (
            client.post(api("/roles"), json={"name": bad}, headers=admin_headers).status_code == 422
        )
    same = client.patch(
        api(f"/roles/{role['id']}"),
        json={"name": "editor", "description": "d"},
        headers=admin_headers,
    )
    assert same.status_code == 200 and same.json()["description"] == "d"


# Assignments and effective permissions


def test_global_roles_give_their_permissions_until_taken_away(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session
) -> None:
    create_resource(client, admin_headers)
    reader = create_role(client, admin_headers, "reader", (ORDERS, "read"))
    writer = create_role(client, admin_headers, "writer", (ORDERS, "read"), (ORDERS, "write"))
    path = api(f"/users/{user.id}/roles")

    body = {"roles": [reader["id"], writer["id"], reader["id"]]}
    assigned = client.put(path, json=body, headers=admin_headers)
    assert assigned.status_code == 200, assigned.text
    assert [r["name"] for r in assigned.json()["roles"]] == ["reader", "writer"]
    assert client.get(path, headers=admin_headers).json() == assigned.json()
    held = permissions(client, admin_headers, user.id, resource=ORDERS)
    assert held.json() == {"permissions": ["read", "write"]}

    assert client.delete(api(f"/roles/{writer['id']}"), headers=admin_headers).status_code == 204
    assert permissions(client, admin_headers, user.id, resource=ORDERS).json() == {
        "permissions": ["read"]
    }
    assert client.put(path, json={"roles": []}, headers=admin_headers).json() == {"roles": []}
    assert permissions(client, admin_headers, user.id, resource=ORDERS).json() == {
        "permissions": []
    }
    first, second = (e.detail for e in events(db, "authz.roles_assigned"))
    assert first == {"before": [], "after": ["reader", "writer"]}
    assert second == {"before": ["reader"], "after": []}  # the deleted role went with it


def test_assigning_an_unknown_role_or_too_many_is_422_and_changes_nothing(
    client: TestClient, admin_headers: dict[str, str], user: User
) -> None:
    role = create_role(client, admin_headers, "reader")
    path = api(f"/users/{user.id}/roles")
    client.put(path, json={"roles": [role["id"]]}, headers=admin_headers)
    unknown = str(uuid.uuid4())
    refused = client.put(path, json={"roles": [role["id"], unknown]}, headers=admin_headers)
    assert refused.status_code == 422 and unknown in str(refused.json()["detail"])
    many = {"roles": [str(uuid.uuid4()) for _ in range(51)]}
    assert client.put(path, json=many, headers=admin_headers).status_code == 422
    assert [r["name"] for r in client.get(path, headers=admin_headers).json()["roles"]] == [
        "reader"
    ]
    unknown_user = api(f"/users/{uuid.uuid4()}/roles")
    assert client.put(unknown_user, json={"roles": []}, headers=admin_headers).status_code == 404


def test_two_admins_assigning_at_once_leave_one_list_or_the_other(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session
) -> None:
    roles = [create_role(client, admin_headers, f"r{n}")["id"] for n in range(6)]
    lists = [[uuid.UUID(r) for r in roles[:3]], [uuid.UUID(r) for r in roles[3:]]]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def assign(role_ids: list[uuid.UUID]) -> None:
        try:
            with Session(get_engine(), expire_on_commit=False) as session:
                barrier.wait()
                transaction(
                    authz.set_user_roles,
                    session,
                    user_id=user.id,
                    role_ids=role_ids,
                    actor=authz.audit.SYSTEM,
                )
        except BaseException as error:  # re-raised below
            errors.append(error)

    for _ in range(5):
        threads = [threading.Thread(target=assign, args=(ids,)) for ids in lists]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        db.expire_all()
        held = {row.role_id for row in db.exec(select(UserRole).where(UserRole.user_id == user.id))}
        assert held in ({*lists[0]}, {*lists[1]})


def test_the_user_sees_their_own_permissions_and_no_one_elses(
    client: TestClient,
    admin_headers: dict[str, str],
    user: User,
    user_headers: dict[str, str],
    moderator: User,
    moderator_headers: dict[str, str],
) -> None:
    create_resource(client, admin_headers)
    role = create_role(client, admin_headers, "reader", (ORDERS, "read"))
    client.put(api(f"/users/{user.id}/roles"), json={"roles": [role["id"]]}, headers=admin_headers)
    assert permissions(client, user_headers, user.id, resource=ORDERS).json() == {
        "permissions": ["read"]
    }
    assert permissions(client, moderator_headers, user.id, resource=ORDERS).status_code == 403
    assert (
        permissions(client, admin_headers, user.id, resource="https://nope.example").status_code
        == 404
    )
    assert permissions(client, admin_headers, uuid.uuid4(), resource=ORDERS).status_code == 404
    own = permissions(client, moderator_headers, moderator.id, resource=issuer()).json()
    assert own == {"permissions": ["account", "users:read"]}  # the matrix's, by role


def add_member(db: Session, user: User, role_ids: list[str], slug: str = "acme") -> Organization:
    organization = db.exec(select(Organization).where(Organization.slug == slug)).first()
    if organization is None:
        organization = Organization(name=slug.title(), slug=slug)
        db.add(organization)
        db.flush()
    membership = Membership(organization_id=organization.id, user_id=user.id)
    db.add(membership)
    db.flush()
    db.add_all(MembershipRole(membership_id=membership.id, role_id=uuid.UUID(r)) for r in role_ids)
    db.commit()
    return organization


def test_roles_in_an_organization_count_only_there_and_while_a_member(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session
) -> None:
    create_resource(client, admin_headers)
    reader = create_role(client, admin_headers, "reader", (ORDERS, "read"))
    writer = create_role(client, admin_headers, "writer", (ORDERS, "write"))
    client.put(
        api(f"/users/{user.id}/roles"), json={"roles": [reader["id"]]}, headers=admin_headers
    )
    acme = add_member(db, user, [writer["id"]])
    add_member(db, user, [], slug="globex")

    def held(**query: str) -> list[str]:
        response = permissions(client, admin_headers, user.id, resource=ORDERS, **query)
        assert response.status_code == 200, response.text
        return list(response.json()["permissions"])

    assert held() == ["read"]
    assert held(organization="acme") == held(organization=str(acme.id)) == ["read", "write"]
    assert held(organization="globex") == ["read"]
    assert (
        permissions(
            client, admin_headers, user.id, resource=ORDERS, organization="nope"
        ).status_code
        == 404
    )
    db.exec(select(Membership))  # the membership goes: its roles go with it
    for membership in db.exec(select(Membership).where(Membership.organization_id == acme.id)):
        db.delete(membership)
    db.commit()
    assert held(organization="acme") == ["read"]


def test_an_inactive_user_holds_nothing(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session
) -> None:
    create_resource(client, admin_headers)
    role = create_role(client, admin_headers, "reader", (ORDERS, "read"))
    client.put(api(f"/users/{user.id}/roles"), json={"roles": [role["id"]]}, headers=admin_headers)
    client.patch(api(f"/users/{user.id}"), json={"is_active": False}, headers=admin_headers)
    assert permissions(client, admin_headers, user.id, resource=ORDERS).json() == {
        "permissions": []
    }


# Clients


def register(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "Orders API", "grant_types": ["client_credentials"], **fields}
    response = client.post(api("/clients"), json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_confidential_client_holds_roles_and_a_public_one_cannot(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    role = create_role(client, admin_headers, "machine")
    service = register(client, admin_headers)
    path = api(f"/clients/{service['client_id']}/roles")
    assigned = client.put(path, json={"roles": [role["id"]]}, headers=admin_headers)
    assert assigned.json() == {"roles": [{"id": role["id"], "name": "machine"}]}
    assert client.get(path, headers=admin_headers).json() == assigned.json()
    assert events(db, "authz.roles_assigned")[0].detail["client_id"] == service["client_id"]

    spa = register(
        client,
        admin_headers,
        public=True,
        grant_types=["authorization_code"],
        redirect_uris=["https://spa.example/cb"],
    )
    refused = client.put(
        api(f"/clients/{spa['client_id']}/roles"), json={"roles": []}, headers=admin_headers
    )
    assert refused.status_code == 422


# The check endpoint


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_the_check_endpoint_answers_from_the_database_now(
    client: TestClient, admin_headers: dict[str, str], user: User, user_headers: dict[str, str]
) -> None:
    create_resource(client, admin_headers)
    role = create_role(client, admin_headers, "reader", (ORDERS, "read"))
    rs = register(client, admin_headers)
    checks = {
        "checks": [
            {"user_id": str(user.id), "resource": ORDERS, "permission": "read"},
            {"user_id": str(user.id), "resource": ORDERS, "permission": "write"},
            {"user_id": str(uuid.uuid4()), "resource": ORDERS, "permission": "read"},
            {"user_id": str(user.id), "resource": "https://nope.example", "permission": "read"},
            {
                "user_id": str(user.id),
                "resource": ORDERS,
                "permission": "read",
                "organization": "x",
            },
        ]
    }
    as_rs = basic(rs["client_id"], rs["client_secret"])
    before = client.post(api("/authz/check"), json=checks, headers=as_rs)
    assert before.status_code == 200, before.text
    assert before.json() == {"results": [False] * 5}

    client.put(api(f"/users/{user.id}/roles"), json={"roles": [role["id"]]}, headers=admin_headers)
    expected = {"results": [True, False, False, False, False]}
    assert client.post(api("/authz/check"), json=checks, headers=as_rs).json() == expected
    in_body = {**checks, "client_id": rs["client_id"], "client_secret": rs["client_secret"]}
    assert client.post(api("/authz/check"), json=in_body).json() == expected
    assert client.post(api("/authz/check"), json=checks, headers=admin_headers).json() == expected

    assert client.post(api("/authz/check"), json=checks, headers=user_headers).status_code == 403
    assert client.post(api("/authz/check"), json=checks).status_code == 401
    wrong = basic(rs["client_id"], "wrong")
    assert client.post(api("/authz/check"), json=checks, headers=wrong).status_code == 401
    both = {**checks, "client_secret": rs["client_secret"]}
    assert client.post(api("/authz/check"), json=both, headers=as_rs).status_code == 400


def test_the_check_endpoint_takes_one_to_a_hundred_checks(
    client: TestClient, admin_headers: dict[str, str], user: User
) -> None:
    one = {"user_id": str(user.id), "resource": ORDERS, "permission": "read"}
    for count, status in ((0, 422), (1, 200), (100, 200), (101, 422)):
        response = client.post(
            api("/authz/check"), json={"checks": [one] * count}, headers=admin_headers
        )
        assert response.status_code == status, (count, response.text)


def test_a_public_client_cannot_check(
    client: TestClient, admin_headers: dict[str, str], user: User
) -> None:
    spa = register(
        client,
        admin_headers,
        public=True,
        grant_types=["authorization_code"],
        redirect_uris=["https://spa.example/cb"],
    )
    body = {
        "checks": [{"user_id": str(user.id), "resource": ORDERS, "permission": "read"}],
        "client_id": spa["client_id"],
    }
    assert client.post(api("/authz/check"), json=body).status_code == 401


def test_a_login_token_of_the_admin_still_works_after_the_matrix_grew(
    client: TestClient, admin: User
) -> None:
    tokens = login(client, admin.email)
    assert client.get(api("/roles"), headers=auth_header(tokens)).status_code == 200


def test_builtin_role_permissions_survive_in_the_table(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    create_role(client, admin_headers, "org-admin", (issuer(), "org:members:read"))
    db.expire_all()
    (row,) = db.exec(select(RolePermission)).all()
    assert (row.resource_id, row.name) == (BUILTIN_RESOURCE_ID, "org:members:read")
