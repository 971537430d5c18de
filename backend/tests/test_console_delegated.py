"""Delegated organization administration in the console (AUTHZ.md "Console": every control
decided by authz:manage or the delegated organization permissions): a member whose roles in an
organization hold org:members:* or org:invitations:manage administers that organization only,
with the controls those permissions allow, grants only what they hold, and is refused (403,
nothing changed) everywhere else."""

import uuid
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.core.permissions import Role
from app.db import get_engine
from app.models.audit import AuditEvent
from app.models.organization import Invitation, Membership, MembershipRole
from app.models.user import User
from tests.utils import PASSWORD, api
from tests.utils.console import alert, csrf, post_forms, sign_in, status
from tests.utils.oidc import ISSUER, browser, submit_login

pytestmark = pytest.mark.usefixtures("oidc_issuer")

API_ID = "https://api.example.com"
ORG_PERMISSIONS = ("org:members:read", "org:members:manage", "org:invitations:manage")


def role(client: TestClient, headers: dict[str, str], name: str, *grants: tuple[str, str]) -> str:
    created = client.post(
        api("/roles"),
        headers=headers,
        json={"name": name, "permissions": [{"resource": r, "name": n} for r, n in grants]},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def member(client: TestClient, headers: dict[str, str], org: str, user: User, *roles: str) -> None:
    put = client.put(
        api(f"/organizations/{org}/members/{user.id}"), headers=headers, json={"roles": list(roles)}
    )
    assert put.status_code == 200, put.text


@pytest.fixture
def scene(
    client: TestClient,
    admin_headers: dict[str, str],
    user: User,
    user_factory: Any,
) -> dict[str, Any]:
    """Acme, where `user` holds "org-admin" (the three organization permissions) and `reader`
    holds "org-reader" (members:read only); Beta, where `user` is no member; a "clerk" role
    holding a permission of a custom API that nobody in Acme holds."""
    resource = client.post(
        api("/resources"),
        headers=admin_headers,
        json={"identifier": API_ID, "name": "Orders", "permissions": [{"name": "read:orders"}]},
    )
    assert resource.status_code == 201, resource.text
    org_admin = role(client, admin_headers, "org-admin", *((ISSUER, p) for p in ORG_PERMISSIONS))
    org_reader = role(client, admin_headers, "org-reader", (ISSUER, "org:members:read"))
    clerk = role(client, admin_headers, "clerk", (API_ID, "read:orders"))
    acme, beta = (
        client.post(api("/organizations"), headers=admin_headers, json={"name": name}).json()["id"]
        for name in ("Acme", "Beta")
    )
    reader = user_factory(email="reader@example.com")
    colleague = user_factory(email="colleague@example.com")
    member(client, admin_headers, acme, user, org_admin)
    member(client, admin_headers, acme, reader, org_reader)
    member(client, admin_headers, beta, colleague)
    return {
        "acme": acme,
        "beta": beta,
        "org_admin": org_admin,
        "org_reader": org_reader,
        "clerk": clerk,
        "reader": reader,
        "colleague": colleague,
    }


def post(b: httpx.Client, path: str, data: dict[str, Any], token: str) -> httpx.Response:
    return b.post(path, data={**data, "csrf_token": token})


def roles_in(org: str, email: str) -> set[str]:
    with Session(get_engine()) as session:
        rows = session.exec(
            select(MembershipRole.role_id)
            .join(Membership, col(Membership.id) == col(MembershipRole.membership_id))
            .join(User, col(User.id) == col(Membership.user_id))
            .where(col(Membership.organization_id) == uuid.UUID(org), col(User.email) == email)
        ).all()
        session.commit()
    return {str(row) for row in rows}


def is_member(org: str, email: str) -> bool:
    with Session(get_engine()) as session:
        found = session.exec(
            select(Membership.id)
            .join(User, col(User.id) == col(Membership.user_id))
            .where(col(Membership.organization_id) == uuid.UUID(org), col(User.email) == email)
        ).first()
        session.commit()
    return found is not None


def test_a_delegate_lands_on_their_organizations_and_sees_only_acme(
    client: TestClient, user: User, scene: dict[str, Any]
) -> None:
    assert user.role is Role.USER
    b, html = sign_in(client, user.email, "/admin/organizations")
    assert "Acme" in html and "Beta" not in html
    assert 'href="/admin/organizations"' in html and "Your organizations" in html
    assert 'href="/admin/users"' not in html and 'href="/admin/roles"' not in html
    assert "/admin/organizations" not in post_forms(html)  # no "Create organization"
    landing = b.get("/admin")
    assert landing.status_code == 303 and landing.headers["location"] == "/admin/organizations"

    page = b.get(f"/admin/organizations/{scene['acme']}")
    assert page.status_code == 200
    forms = post_forms(page.text)
    assert f"/admin/organizations/{scene['acme']}/members" in forms
    assert f"/admin/organizations/{scene['acme']}/invitations" in forms
    assert not any(form.endswith("/delete") for form in forms)
    assert "Delete organization" not in page.text
    assert "reader@example.com" in page.text and 'href="/admin/users/' not in page.text
    # Only the roles whose every permission the delegate holds there are offered.
    assert f'value="{scene["org_reader"]}"' in page.text
    assert f'value="{scene["org_admin"]}"' in page.text
    assert f'value="{scene["clerk"]}"' not in page.text


def test_a_delegate_adds_a_member_invites_and_revokes_audited_as_themselves(
    client: TestClient, user: User, scene: dict[str, Any], mailbox: Any
) -> None:
    acme = scene["acme"]
    b, html = sign_in(client, user.email, f"/admin/organizations/{acme}")
    token = csrf(html)
    added = post(
        b,
        f"/admin/organizations/{acme}/members",
        {"email": "colleague@example.com", "role": scene["org_reader"]},
        token,
    )
    assert added.status_code == 303, alert(added.text)
    assert roles_in(acme, "colleague@example.com") == {scene["org_reader"]}
    assert status(b.get(added.headers["location"]).text) == "Member saved."

    sent = post(b, f"/admin/organizations/{acme}/invitations", {"email": "new@example.com"}, token)
    assert sent.status_code == 303, alert(sent.text)
    mailbox.wait()
    assert mailbox.token_for("new@example.com", "/account/invitation")
    with Session(get_engine(), expire_on_commit=False) as session:
        invitation = session.exec(
            select(Invitation).where(Invitation.email == "new@example.com")
        ).one()
        events = session.exec(
            select(AuditEvent).where(
                col(AuditEvent.event).in_(["org.member_added", "org.invitation_sent"])
            )
        ).all()
        session.commit()
    revoked = post(b, f"/admin/organizations/{acme}/invitations/{invitation.id}/revoke", {}, token)
    assert revoked.status_code == 303
    mine = sorted(event.event for event in events if event.actor_id == user.id)
    assert mine == ["org.invitation_sent", "org.member_added"]

    removed = post(
        b, f"/admin/organizations/{acme}/members/{scene['colleague'].id}/remove", {}, token
    )
    assert removed.status_code == 303
    assert not is_member(acme, "colleague@example.com")


def test_a_delegate_cannot_grant_what_they_lack_nor_act_elsewhere(
    client: TestClient, user: User, scene: dict[str, Any]
) -> None:
    acme, beta = scene["acme"], scene["beta"]
    b, html = sign_in(client, user.email, f"/admin/organizations/{acme}")
    token = csrf(html)
    forged = post(
        b,
        f"/admin/organizations/{acme}/members",
        {"email": "reader@example.com", "role": scene["clerk"]},
        token,
    )
    assert forged.status_code == 403 and "read:orders" in (alert(forged.text) or "")
    assert roles_in(acme, "reader@example.com") == {scene["org_reader"]}

    assert b.get(f"/admin/organizations/{beta}").status_code == 403
    elsewhere = {
        f"/admin/organizations/{beta}/members": {"email": user.email},
        f"/admin/organizations/{beta}/members/{scene['colleague'].id}/remove": {},
        f"/admin/organizations/{beta}/invitations": {"email": "x@example.com"},
    }
    for path, data in elsewhere.items():
        answer = post(b, path, data, token)
        assert answer.status_code == 403, path
        assert alert(answer.text) == "You do not administer this organization.", path
    assert is_member(beta, "colleague@example.com") and not is_member(beta, user.email)

    for path in (f"/admin/organizations/{acme}/delete", "/admin/organizations"):
        answer = post(b, path, {"name": "Gamma"}, token)
        assert answer.status_code == 403 and alert(answer.text) == "Your role may not do this."
    assert b.get(f"/admin/organizations/{acme}").status_code == 200  # still there
    for page in ("/admin/users", "/admin/roles", "/admin/resources", "/admin/clients"):
        assert b.get(page).status_code in (303, 403), page


def test_a_members_reader_sees_the_members_without_any_control(
    client: TestClient, scene: dict[str, Any]
) -> None:
    acme = scene["acme"]
    b, html = sign_in(client, "reader@example.com", f"/admin/organizations/{acme}")
    assert '<h2 id="members-heading">Members</h2>' in html and "colleague" not in html
    assert "reader@example.com" in html
    assert post_forms(html) == ["/admin/logout"]
    assert "Invitations" not in html
    answer = post(
        b, f"/admin/organizations/{acme}/members", {"email": "colleague@example.com"}, csrf(html)
    )
    assert answer.status_code == 403 and alert(answer.text) == "You may not do this here."
    assert not is_member(acme, "colleague@example.com")


def test_a_user_who_administers_nothing_still_gets_the_403_page(
    client: TestClient, scene: dict[str, Any]
) -> None:
    b = browser(client)
    colleague = scene["colleague"]  # a member of Beta, with no role there
    first = b.get("/admin")
    login = b.get(first.headers["location"])
    back = b.get(submit_login(b, login, colleague.email, PASSWORD).headers["location"])
    assert back.status_code == 303
    for page in ("/admin", "/admin/organizations", f"/admin/organizations/{scene['beta']}"):
        answer = b.get(page)
        assert answer.status_code == 403, page
        assert post_forms(answer.text) == ["/admin/logout"]
