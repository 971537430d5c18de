"""Organizations, members and delegated administration (AUTHZ.md)."""

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.models.audit import AuditEvent
from app.models.organization import Membership, MembershipRole
from app.models.user import User
from app.oauth.discovery import issuer
from tests.test_authz import ORDERS, create_resource, create_role
from tests.utils import api, auth_header, login

MANAGE = (issuer(), "org:members:manage")
READ = (issuer(), "org:members:read")


def create_org(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(
        api("/organizations"), json={"name": "Acme Corp", **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def put_member(
    client: TestClient, headers: dict[str, str], org: str, user_id: Any, *roles: str
) -> Any:
    path = api(f"/organizations/{org}/members/{user_id}")
    return client.put(path, json={"roles": list(roles)}, headers=headers)


def headers_of(client: TestClient, user: User) -> dict[str, str]:
    return auth_header(login(client, user.email))


def test_organizations_are_created_read_renamed_and_deleted(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session
) -> None:
    org = create_org(client, admin_headers)
    assert org["slug"] == "acme-corp"
    assert create_org(client, admin_headers, slug="globex")["slug"] == "globex"
    duplicate = client.post(
        api("/organizations"), json={"name": "Acme Corp"}, headers=admin_headers
    )
    assert duplicate.status_code == 409
    for bad in ({"name": ""}, {"name": "x", "slug": "Has Caps"}, {"name": "x", "slug": "-lead"}):
        assert (
            client.post(api("/organizations"), json=bad, headers=admin_headers).status_code == 422
        )
    by_slug = client.get(api("/organizations/acme-corp"), headers=admin_headers).json()
    assert by_slug == client.get(api(f"/organizations/{org['id']}"), headers=admin_headers).json()
    page = client.get(api("/organizations"), headers=admin_headers).json()
    assert [o["slug"] for o in page["items"]] == ["acme-corp", "globex"] and page["total"] == 2

    renamed = client.patch(
        api(f"/organizations/{org['id']}"),
        json={"name": "Acme", "slug": "acme"},
        headers=admin_headers,
    )
    assert renamed.json()["slug"] == "acme"
    taken = client.patch(api("/organizations/acme"), json={"slug": "globex"}, headers=admin_headers)
    assert taken.status_code == 409

    assert put_member(client, admin_headers, "acme", user.id).status_code == 200
    assert client.delete(api("/organizations/acme"), headers=admin_headers).status_code == 204
    assert client.get(api("/organizations/acme"), headers=admin_headers).status_code == 404
    db.expire_all()
    assert db.exec(select(Membership)).all() == []
    names = [
        e.event for e in db.exec(select(AuditEvent).where(col(AuditEvent.event).like("org.%")))
    ]
    assert sorted(names) == sorted(
        ["org.created", "org.created", "org.updated", "org.member_added", "org.deleted"]
    )


def test_only_admins_create_and_list_organizations(
    client: TestClient, user_headers: dict[str, str], moderator_headers: dict[str, str]
) -> None:
    for headers in (user_headers, moderator_headers):
        assert client.get(api("/organizations"), headers=headers).status_code == 403
        body = {"name": "Mine"}
        assert client.post(api("/organizations"), json=body, headers=headers).status_code == 403


def test_members_see_their_organization_and_their_roles_there(
    client: TestClient, admin_headers: dict[str, str], user: User, moderator: User
) -> None:
    create_resource(client, admin_headers)
    editor = create_role(client, admin_headers, "editor", (ORDERS, "write"))
    org = create_org(client, admin_headers)
    create_org(client, admin_headers, name="Other")
    added = put_member(client, admin_headers, org["slug"], user.id, editor["id"])
    assert added.status_code == 200, added.text
    assert added.json() == {
        "user_id": str(user.id),
        "email": user.email,
        "full_name": user.full_name,
        "roles": [{"id": editor["id"], "name": "editor"}],
    }
    mine = headers_of(client, user)
    assert client.get(api(f"/organizations/{org['id']}"), headers=mine).status_code == 200
    assert client.get(api("/organizations/other"), headers=mine).status_code == 403
    listed = client.get(api("/users/me/organizations"), headers=mine).json()
    assert listed["items"] == [
        {
            **{k: org[k] for k in ("id", "name", "slug")},
            "roles": [{"id": editor["id"], "name": "editor"}],
        }
    ]
    assert (
        client.get(api("/users/me/organizations"), headers=headers_of(client, moderator)).json()[
            "items"
        ]
        == []
    )
    # a plain member may not list the members
    assert client.get(api(f"/organizations/{org['id']}/members"), headers=mine).status_code == 403
    members = client.get(api(f"/organizations/{org['id']}/members"), headers=admin_headers).json()
    assert [m["user_id"] for m in members["items"]] == [str(user.id)]


def test_unknown_things_are_404_and_unknown_roles_422(
    client: TestClient, admin_headers: dict[str, str], user: User
) -> None:
    create_org(client, admin_headers, slug="acme")
    assert put_member(client, admin_headers, "nope", user.id).status_code == 404
    assert put_member(client, admin_headers, "acme", uuid.uuid4()).status_code == 404
    unknown = str(uuid.uuid4())
    refused = put_member(client, admin_headers, "acme", user.id, unknown)
    assert refused.status_code == 422 and unknown in str(refused.json()["detail"])
    path = api(f"/organizations/acme/members/{user.id}")
    assert client.delete(path, headers=admin_headers).status_code == 404


@pytest.fixture
def delegated(
    client: TestClient, admin_headers: dict[str, str], user_factory: Any
) -> dict[str, Any]:
    """Acme with a manager (org:members:manage + read, and orders:read), and roles to grant."""
    create_resource(client, admin_headers, ORDERS, "read", "write")
    manager_role = create_role(client, admin_headers, "org-admin", MANAGE, READ, (ORDERS, "read"))
    reader = create_role(client, admin_headers, "reader", (ORDERS, "read"))
    writer = create_role(client, admin_headers, "writer", (ORDERS, "write"))
    lister = create_role(client, admin_headers, "lister", READ)
    create_org(client, admin_headers, slug="acme")
    create_org(client, admin_headers, name="Globex", slug="globex")
    manager = user_factory()
    assert (
        put_member(client, admin_headers, "acme", manager.id, manager_role["id"]).status_code == 200
    )
    return {
        "manager": manager,
        "headers": headers_of(client, manager),
        "roles": {r["name"]: r["id"] for r in (manager_role, reader, writer, lister)},
    }


def test_a_manager_adds_members_with_roles_they_hold(
    client: TestClient, delegated: dict[str, Any], user: User, db: Session
) -> None:
    headers, roles = delegated["headers"], delegated["roles"]
    assert put_member(client, headers, "acme", user.id, roles["reader"]).status_code == 200
    refused = put_member(client, headers, "acme", user.id, roles["writer"])
    assert refused.status_code == 403 and "write" in refused.json()["detail"]
    db.expire_all()
    (membership,) = db.exec(select(Membership).where(Membership.user_id == user.id)).all()
    held = db.exec(
        select(MembershipRole).where(MembershipRole.membership_id == membership.id)
    ).all()
    assert [str(row.role_id) for row in held] == [roles["reader"]]  # the refusal changed nothing
    members = client.get(api("/organizations/acme/members"), headers=headers)
    assert members.status_code == 200 and members.json()["total"] == 2
    assert (
        client.delete(api(f"/organizations/acme/members/{user.id}"), headers=headers).status_code
        == 204
    )


def test_delegation_stops_at_the_organization_and_the_permission(
    client: TestClient,
    admin_headers: dict[str, str],
    delegated: dict[str, Any],
    user: User,
    user_factory: Any,
) -> None:
    headers, roles = delegated["headers"], delegated["roles"]
    assert put_member(client, headers, "globex", user.id, roles["reader"]).status_code == 403
    assert client.get(api("/organizations/globex/members"), headers=headers).status_code == 403
    lister = user_factory()
    put_member(client, admin_headers, "acme", lister.id, roles["lister"])
    lister_headers = headers_of(client, lister)
    assert client.get(api("/organizations/acme/members"), headers=lister_headers).status_code == 200
    assert put_member(client, lister_headers, "acme", user.id).status_code == 403
    assert (
        client.patch(api("/organizations/acme"), json={"name": "x"}, headers=headers).status_code
        == 403
    )
    assert client.delete(api("/organizations/acme"), headers=headers).status_code == 403


def test_the_last_manager_cannot_drop_it_from_themselves(
    client: TestClient, admin_headers: dict[str, str], delegated: dict[str, Any], user_factory: Any
) -> None:
    manager, headers, roles = delegated["manager"], delegated["headers"], delegated["roles"]
    own = api(f"/organizations/acme/members/{manager.id}")
    assert put_member(client, headers, "acme", manager.id, roles["reader"]).status_code == 409
    assert client.delete(own, headers=headers).status_code == 409
    assert put_member(client, headers, "acme", manager.id, roles["org-admin"]).status_code == 200

    second = user_factory()
    assert put_member(client, headers, "acme", second.id, roles["org-admin"]).status_code == 200
    assert client.delete(own, headers=headers).status_code == 204  # another manager remains
    assert client.get(api("/organizations/acme/members"), headers=headers).status_code == 403
    # an admin is not held by the rule
    second_own = api(f"/organizations/acme/members/{second.id}")
    assert client.delete(second_own, headers=admin_headers).status_code == 204


# Invitations


def invite(client: TestClient, headers: dict[str, str], org: str, email: str, *roles: str) -> Any:
    body = {"email": email, "roles": list(roles)}
    return client.post(api(f"/organizations/{org}/invitations"), json=body, headers=headers)


def accept(client: TestClient, headers: dict[str, str], token: str) -> Any:
    return client.post(api("/invitations/accept"), json={"token": token}, headers=headers)


def test_an_invitation_is_mailed_and_accepted_by_the_verified_invited_address(
    client: TestClient,
    admin_headers: dict[str, str],
    mailbox: Any,
    user_factory: Any,
    db: Session,
) -> None:
    role = create_role(client, admin_headers, "reader")
    create_org(client, admin_headers, slug="acme")
    invitee = user_factory(is_verified=True)
    sent = invite(client, admin_headers, "acme", invitee.email.upper(), role["id"])
    assert sent.status_code == 201, sent.text
    assert sent.json()["email"] == invitee.email and sent.json()["roles"][0]["name"] == "reader"
    assert "token" not in sent.text
    mailbox.wait()
    token = mailbox.token_for(invitee.email, "/account/invitation")
    listed = client.get(api("/organizations/acme/invitations"), headers=admin_headers).json()
    assert [i["id"] for i in listed["items"]] == [sent.json()["id"]]

    someone_else = user_factory(is_verified=True)
    assert accept(client, headers_of(client, someone_else), token).status_code == 403
    joined = accept(client, headers_of(client, invitee), token)
    assert joined.status_code == 200, joined.text
    assert joined.json()["organization"]["slug"] == "acme"
    assert [r["name"] for r in joined.json()["roles"]] == ["reader"]
    assert accept(client, headers_of(client, invitee), token).status_code == 400  # spent
    assert (
        client.get(api("/organizations/acme/invitations"), headers=admin_headers).json()["items"]
        == []
    )
    events = {e.event for e in db.exec(select(AuditEvent))}
    assert {"org.invitation_sent", "org.invitation_accepted", "org.member_added"} <= events


def test_an_unverified_address_cannot_accept(
    client: TestClient, admin_headers: dict[str, str], mailbox: Any, user_factory: Any
) -> None:
    create_org(client, admin_headers, slug="acme")
    invitee = user_factory(is_verified=False)
    invite(client, admin_headers, "acme", invitee.email)
    mailbox.wait()
    token = mailbox.token_for(invitee.email, "/account/invitation")
    assert accept(client, headers_of(client, invitee), token).status_code == 403


def test_a_replaced_or_revoked_invitation_no_longer_works(
    client: TestClient, admin_headers: dict[str, str], mailbox: Any, user_factory: Any
) -> None:
    create_org(client, admin_headers, slug="acme")
    invitee = user_factory(is_verified=True)
    invite(client, admin_headers, "acme", invitee.email)
    mailbox.wait(1)
    first = mailbox.token_for(invitee.email, "/account/invitation")
    second_id = invite(client, admin_headers, "acme", invitee.email).json()["id"]
    mailbox.wait(2)
    second = mailbox.token_for(invitee.email, "/account/invitation")
    mine = headers_of(client, invitee)
    assert accept(client, mine, first).status_code == 400  # replaced
    path = api(f"/organizations/acme/invitations/{second_id}")
    assert client.delete(path, headers=admin_headers).status_code == 204
    assert client.delete(path, headers=admin_headers).status_code == 404
    assert accept(client, mine, second).status_code == 400  # revoked
    assert accept(client, mine, "made-up").status_code == 400


def test_an_invitation_accepted_twice_at_once_makes_one_membership(
    client: TestClient, admin_headers: dict[str, str], mailbox: Any, user_factory: Any, db: Session
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    create_org(client, admin_headers, slug="acme")
    for round_ in range(3):
        invitee = user_factory(is_verified=True)
        invite(client, admin_headers, "acme", invitee.email)
        mailbox.wait(round_ + 1)
        token = mailbox.token_for(invitee.email, "/account/invitation")
        mine = headers_of(client, invitee)
        with ThreadPoolExecutor(4) as pool:

            def once(_: int, mine: dict[str, str] = mine, token: str = token) -> int:
                return int(accept(client, mine, token).status_code)

            statuses = sorted(pool.map(once, range(4)))
        assert statuses == [200, 400, 400, 400]
        db.expire_all()
        assert len(db.exec(select(Membership).where(Membership.user_id == invitee.id)).all()) == 1


def test_a_member_invites_only_with_roles_they_hold(
    client: TestClient, admin_headers: dict[str, str], delegated: dict[str, Any], mailbox: Any
) -> None:
    headers, roles = delegated["headers"], delegated["roles"]
    # the manager's role does not hold org:invitations:manage
    assert invite(client, headers, "acme", "new@example.com").status_code == 403
    inviter_role = create_role(
        client, admin_headers, "inviter", (issuer(), "org:invitations:manage"), MANAGE, READ,
        (ORDERS, "read"),
    )  # fmt: skip
    manager = delegated["manager"]
    put_member(client, admin_headers, "acme", manager.id, inviter_role["id"])
    assert invite(client, headers, "acme", "new@example.com", roles["reader"]).status_code == 201
    refused = invite(client, headers, "acme", "new@example.com", roles["writer"])
    assert refused.status_code == 403 and "write" in refused.json()["detail"]
    assert invite(client, headers, "globex", "new@example.com").status_code == 403
