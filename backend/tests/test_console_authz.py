"""The console's pages for the product's authorization (AUTHZ.md "Console") over HTTP, driven
like a browser through the hosted login: API resources, roles, organizations (members,
invitations) and a user's product roles; every control for authz:manage only (a forged POST
is 403 and changes nothing), CSRF on every form, bad input re-shown with a 4xx, the built-in
resource read-only, and each change made by the shared steps, audited with the admin as actor."""

import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from app.db import get_engine
from app.models.audit import AuditEvent
from app.models.authz import (
    BUILTIN_RESOURCE_ID,
    ApiPermission,
    ApiResource,
    ProductRole,
    RolePermission,
    UserRole,
)
from app.models.organization import Invitation, Membership, MembershipRole, Organization
from app.models.user import User
from tests.utils import api
from tests.utils.console import alert, csrf, post_forms, sign_in, status
from tests.utils.oidc import ISSUER

pytestmark = pytest.mark.usefixtures("oidc_issuer")

API_ID = "https://api.example.com"
TABLES: list[Any] = [
    ApiResource,
    ApiPermission,
    ProductRole,
    RolePermission,
    UserRole,
    Organization,
    Membership,
    MembershipRole,
    Invitation,
    AuditEvent,
]


def snapshot() -> dict[str, Any]:
    """Every row an authorization page could change (counts, and the names that matter)."""
    with Session(get_engine()) as session:
        state: dict[str, Any] = {
            table.__tablename__: session.exec(select(func.count()).select_from(table)).one()
            for table in TABLES
        }
        state["resources"] = sorted(session.exec(select(ApiResource.name)).all())
        state["permissions"] = sorted(session.exec(select(ApiPermission.name)).all())
        state["roles"] = sorted(session.exec(select(ProductRole.name)).all())
        state["grants"] = sorted(session.exec(select(RolePermission.name)).all())
        session.commit()
    return state


def last_event(name: str) -> AuditEvent:
    with Session(get_engine(), expire_on_commit=False) as session:
        row = session.exec(
            select(AuditEvent).where(AuditEvent.event == name).order_by(col(AuditEvent.id).desc())
        ).first()
        session.commit()
    assert row is not None, name
    return row


def post(b: httpx.Client, path: str, data: dict[str, Any], token: str | None) -> httpx.Response:
    body = {**data, **({"csrf_token": token} if token is not None else {})}
    return b.post(path, data=body)


@pytest.fixture
def scene(client: TestClient, admin_headers: dict[str, str], user: User) -> dict[str, Any]:
    """A resource with two permissions, a role holding one, an organization with `user` as a
    member holding the role, and a pending invitation."""
    resource = client.post(
        api("/resources"),
        headers=admin_headers,
        json={
            "identifier": API_ID,
            "name": "Orders",
            "permissions": [{"name": "read:orders", "description": "Read orders"}, {"name": "x"}],
        },
    ).json()
    role = client.post(
        api("/roles"),
        headers=admin_headers,
        json={"name": "clerk", "permissions": [{"resource": API_ID, "name": "read:orders"}]},
    ).json()
    org = client.post(
        api("/organizations"), headers=admin_headers, json={"name": "Acme", "slug": "acme"}
    ).json()
    put = client.put(
        api(f"/organizations/{org['id']}/members/{user.id}"),
        headers=admin_headers,
        json={"roles": [role["id"]]},
    )
    assert put.status_code == 200, put.text
    invited = client.post(
        api(f"/organizations/{org['id']}/invitations"),
        headers=admin_headers,
        json={"email": "new@example.com", "roles": []},
    ).json()
    return {"resource": resource, "role": role, "org": org, "user": user, "invitation": invited}


def pages_of(scene: dict[str, Any]) -> list[str]:
    return [
        "/admin/resources",
        f"/admin/resources/{BUILTIN_RESOURCE_ID}",
        f"/admin/resources/{scene['resource']['id']}",
        "/admin/roles",
        f"/admin/roles/{scene['role']['id']}",
        "/admin/organizations",
        f"/admin/organizations/{scene['org']['id']}",
    ]


def posts_of(scene: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    resource, role = scene["resource"]["id"], scene["role"]["id"]
    org, user = scene["org"]["id"], scene["user"].id
    return {
        "create-resource": (
            "/admin/resources",
            {"identifier": "https://b.example.com", "name": "B", "permissions": "a"},
        ),
        "update-resource": (f"/admin/resources/{resource}", {"name": "O", "permissions": "x\ny"}),
        "delete-resource": (f"/admin/resources/{resource}/delete", {}),
        "create-role": ("/admin/roles", {"name": "r2", "permission": f"{API_ID} x"}),
        "update-role": (f"/admin/roles/{role}", {"name": "clerk2"}),
        "delete-role": (f"/admin/roles/{role}/delete", {}),
        "create-org": ("/admin/organizations", {"name": "Beta"}),
        "put-member": (
            f"/admin/organizations/{org}/members",
            {"email": "admin@example.com", "role": role},
        ),
        "remove-member": (f"/admin/organizations/{org}/members/{user}/remove", {}),
        "invite": (f"/admin/organizations/{org}/invitations", {"email": "z@example.com"}),
        "revoke": (
            f"/admin/organizations/{org}/invitations/{scene['invitation']['id']}/revoke",
            {},
        ),
        "delete-org": (f"/admin/organizations/{org}/delete", {}),
        "user-roles": (f"/admin/users/{user}/product-roles", {"role": role}),
    }


NAV = ('href="/admin/resources"', 'href="/admin/roles"', 'href="/admin/organizations"')


# --- who may see and do what -------------------------------------------------------------------


def test_each_page_renders_for_an_admin_with_its_nav_links(
    client: TestClient, admin: User, scene: dict[str, Any]
) -> None:
    b, html = sign_in(client, admin.email)
    assert all(link in html for link in NAV)
    for page in [*pages_of(scene), f"/admin/users/{scene['user'].id}"]:
        answer = b.get(page)
        assert answer.status_code == 200, page
        assert "<title>" in answer.text and all(link in answer.text for link in NAV), page
    user_page = b.get(f"/admin/users/{scene['user'].id}").text
    assert "Product roles" in user_page and "Acme" in user_page
    assert f'action="/admin/users/{scene["user"].id}/product-roles"' in user_page


def test_a_moderator_gets_a_403_on_every_page_and_post_and_no_link_or_control(
    client: TestClient, moderator: User, scene: dict[str, Any]
) -> None:
    b, html = sign_in(client, moderator.email)
    assert not any(link in html for link in NAV)
    for page in pages_of(scene):
        answer = b.get(page)
        assert answer.status_code == 403, page
        assert post_forms(answer.text) == ["/admin/logout"]
    user_page = b.get(f"/admin/users/{scene['user'].id}").text
    assert "Product roles" not in user_page and "product-roles" not in user_page
    before = snapshot()
    for action, (path, data) in posts_of(scene).items():
        answer = post(b, path, data, csrf(html))  # the moderator's own, valid token
        assert answer.status_code == 403, action
        in_organization = "/admin/organizations/" in path and not path.endswith("/delete")
        expected = (
            "You do not administer this organization."
            if in_organization
            else "Your role may not do this."
        )
        assert alert(answer.text) == expected, action
    assert snapshot() == before


def test_every_form_refuses_a_missing_or_forged_csrf_token(
    client: TestClient, admin: User, scene: dict[str, Any]
) -> None:
    b, html = sign_in(client, admin.email)
    _, other = sign_in(client, admin.email)  # the same admin in another browser
    before = snapshot()
    for action, (path, data) in posts_of(scene).items():
        for token in (None, "", csrf(html)[:-1] + "x", csrf(other)):
            answer = post(b, path, data, token)
            assert answer.status_code == 403, (action, token)
            assert "This form has expired" in answer.text
    assert snapshot() == before


def test_each_form_works_for_an_admin_audited_with_the_admin_as_actor(
    client: TestClient, admin: User, scene: dict[str, Any]
) -> None:
    events = {
        "create-resource": "authz.resource_created",
        "update-resource": "authz.resource_updated",
        "create-role": "authz.role_created",
        "update-role": "authz.role_updated",
        "create-org": "org.created",
        "put-member": "org.member_added",
        "invite": "org.invitation_sent",
        "revoke": "org.invitation_revoked",
        "remove-member": "org.member_removed",
        "user-roles": "authz.roles_assigned",
        "delete-role": "authz.role_deleted",
        "delete-resource": "authz.resource_deleted",
        "delete-org": "org.deleted",
    }
    b, html = sign_in(client, admin.email)
    forms = posts_of(scene)
    for action, event in events.items():
        path, data = forms[action]
        before = snapshot()
        answer = post(b, path, data, csrf(html))
        assert answer.status_code == 303, (action, answer.text)
        landed = b.get(answer.headers["location"])
        assert landed.status_code == 200 and status(landed.text), action
        assert snapshot() != before, action
        assert last_event(event).actor_id == admin.id, action


# --- API resources -----------------------------------------------------------------------------


def test_an_admin_creates_edits_and_deletes_a_resource(
    client: TestClient, admin: User, scene: dict[str, Any]
) -> None:
    b, html = sign_in(client, admin.email, "/admin/resources")
    assert html.index("(built in)") < html.index("Orders")  # the built-in resource first
    form = {
        "identifier": "https://billing.example.com",
        "name": "Billing",
        "permissions": "read:invoices = Read invoices\r\n\r\n  pay  \r\n",
    }
    created = post(b, "/admin/resources", form, csrf(html))
    assert created.status_code == 303
    page = b.get(created.headers["location"]).text
    assert status(page) == "Resource created." and "<h1>Billing</h1>" in page
    assert "pay\nread:invoices = Read invoices" in page  # one a line, by name
    with Session(get_engine()) as session:
        row = session.exec(select(ApiResource).where(ApiResource.name == "Billing")).one()
        names = session.exec(
            select(ApiPermission.name, ApiPermission.description).where(
                ApiPermission.resource_id == row.id
            )
        ).all()
        session.commit()
    assert sorted(names) == [("pay", ""), ("read:invoices", "Read invoices")]

    # Editing the scene's resource: a permission left out leaves the role that held it.
    orders = scene["resource"]["id"]
    saved = post(
        b, f"/admin/resources/{orders}", {"name": "Orders v2", "permissions": "x"}, csrf(html)
    )
    assert saved.status_code == 303
    assert "<h1>Orders v2</h1>" in b.get(saved.headers["location"]).text
    assert "read:orders" not in snapshot()["grants"]

    confirm = b.get(f"/admin/resources/{orders}", params={"confirm": "delete"}).text
    assert f'action="/admin/resources/{orders}/delete"' in confirm
    assert (
        f'action="/admin/resources/{orders}/delete"' not in b.get(f"/admin/resources/{orders}").text
    )
    deleted = post(b, f"/admin/resources/{orders}/delete", {}, csrf(confirm))
    assert deleted.status_code == 303
    assert status(b.get(deleted.headers["location"]).text) == (
        "Resource deleted: its permissions have left every role."
    )
    assert b.get(f"/admin/resources/{orders}").status_code == 404


def test_the_built_in_resource_is_read_only_and_a_forged_change_is_refused(
    client: TestClient, admin: User
) -> None:
    b, html = sign_in(client, admin.email)
    path = f"/admin/resources/{BUILTIN_RESOURCE_ID}"
    page = b.get(path)
    assert page.status_code == 200 and ISSUER in page.text and "org:members:manage" in page.text
    assert post_forms(page.text) == ["/admin/logout"] and "Delete resource" not in page.text
    assert post_forms(b.get(path, params={"confirm": "delete"}).text) == ["/admin/logout"]
    before = snapshot()
    for target, data in ((path, {"name": "Mine", "permissions": "a"}), (f"{path}/delete", {})):
        answer = post(b, target, data, csrf(html))
        assert answer.status_code == 403, target
        assert alert(answer.text) == "The built-in resource cannot be changed or deleted"
    assert snapshot() == before


@pytest.mark.parametrize(
    ("form", "expected", "code"),
    [
        ({"identifier": "not a uri", "name": "N"}, "Identifier", 422),
        ({"identifier": "https://n.example.com", "name": ""}, "Name", 422),
        (
            {"identifier": "https://n.example.com", "name": "N", "permissions": "bad name!"},
            "bad name!",
            422,
        ),
        (
            {"identifier": "https://n.example.com", "name": "N", "permissions": "a\na"},
            "duplicate",
            422,
        ),
        ({"identifier": API_ID, "name": "Again"}, "exists", 409),
        ({"identifier": ISSUER, "name": "Built in again"}, "exists", 409),
    ],
)
def test_a_bad_resource_form_is_re_shown_with_the_reason(
    client: TestClient,
    admin: User,
    scene: dict[str, Any],
    form: dict[str, str],
    expected: str,
    code: int,
) -> None:
    b, html = sign_in(client, admin.email)
    before = snapshot()
    answer = post(b, "/admin/resources", form, csrf(html))
    assert answer.status_code == code
    assert expected in (alert(answer.text) or "")
    assert f'value="{form["name"]}"' in answer.text  # the form keeps what was typed
    assert snapshot() == before
    edit = post(
        b,
        f"/admin/resources/{scene['resource']['id']}",
        {"name": "", "permissions": "ok"},
        csrf(html),
    )
    assert edit.status_code == 422 and (alert(edit.text) or "").startswith("Name")
    assert snapshot() == before


# --- roles -------------------------------------------------------------------------------------


def test_an_admin_creates_edits_and_deletes_a_role_with_permission_checkboxes(
    client: TestClient, admin: User, scene: dict[str, Any]
) -> None:
    b, html = sign_in(client, admin.email, "/admin/roles")
    boxes = re.findall(r'name="permission" value="([^"]+)"', html)
    assert f"{API_ID} read:orders" in boxes and f"{API_ID} x" in boxes
    builtin = sorted(box.split(" ")[1] for box in boxes if box.startswith(f"{ISSUER} "))
    assert builtin == ["org:invitations:manage", "org:members:manage", "org:members:read"]
    form = {
        "name": "manager",
        "description": "Runs an organization",
        "permission": [f"{API_ID} x", f"{ISSUER} org:members:manage"],
    }
    created = post(b, "/admin/roles", form, csrf(html))
    assert created.status_code == 303
    page = b.get(created.headers["location"]).text
    assert status(page) == "Role created." and "<h1>manager</h1>" in page
    assert f'value="{API_ID} x" checked' in page and f'value="{API_ID} read:orders">' in page
    role_id = created.headers["location"].split("/")[-1].split("?")[0]

    saved = post(
        b,
        f"/admin/roles/{role_id}",
        {"name": "boss", "description": "", "permission": [f"{API_ID} read:orders"]},
        csrf(html),
    )
    assert saved.status_code == 303
    with Session(get_engine()) as session:
        grants = session.exec(
            select(RolePermission.name).where(RolePermission.role_id == uuid.UUID(role_id))
        ).all()
        session.commit()
    assert grants == ["read:orders"]
    assert "<h1>boss</h1>" in b.get(f"/admin/roles/{role_id}").text

    confirm = b.get(f"/admin/roles/{role_id}", params={"confirm": "delete"}).text
    deleted = post(b, f"/admin/roles/{role_id}/delete", {}, csrf(confirm))
    assert deleted.status_code == 303
    assert "boss" not in snapshot()["roles"]


@pytest.mark.parametrize(
    ("form", "expected", "code"),
    [
        ({"name": "bad name!"}, "Name", 422),
        ({"name": ""}, "Name", 422),
        ({"name": "clerk"}, "exists", 409),
        ({"name": "r", "permission": f"{ISSUER} users:read"}, "cannot be in a role", 422),
        ({"name": "r", "permission": f"{API_ID} nope"}, "Unknown permission", 422),
        ({"name": "r", "permission": "https://nowhere.example.com x"}, "Unknown resource", 422),
    ],
)
def test_a_bad_role_form_is_re_shown_with_the_reason(
    client: TestClient,
    admin: User,
    scene: dict[str, Any],
    form: dict[str, str],
    expected: str,
    code: int,
) -> None:
    b, html = sign_in(client, admin.email)
    before = snapshot()
    answer = post(b, "/admin/roles", form, csrf(html))
    assert answer.status_code == code, answer.text
    assert expected in (alert(answer.text) or "")
    assert "Create role" in answer.text
    assert snapshot() == before


# --- organizations -----------------------------------------------------------------------------


def test_an_admin_runs_an_organization_members_and_invitations(
    client: TestClient,
    admin: User,
    user: User,
    scene: dict[str, Any],
    mailbox: Any,
) -> None:
    b, html = sign_in(client, admin.email, "/admin/organizations")
    created = post(b, "/admin/organizations", {"name": "Zeta Corp", "slug": ""}, csrf(html))
    assert created.status_code == 303
    page = b.get(created.headers["location"]).text
    assert status(page) == "Organization created." and "<code>zeta-corp</code>" in page
    org = created.headers["location"].split("/")[-1].split("?")[0]
    role = scene["role"]["id"]

    added = post(
        b,
        f"/admin/organizations/{org}/members",
        {"email": user.email.upper(), "role": role},
        csrf(html),
    )
    assert added.status_code == 303
    page = b.get(added.headers["location"]).text
    assert status(page) == "Member saved." and user.email in page and "<td>clerk</td>" in page
    edit = b.get(f"/admin/organizations/{org}", params={"member": str(user.id)}).text
    assert f'value="{user.email}"' in edit and f'value="{role}" checked' in edit
    updated = post(b, f"/admin/organizations/{org}/members", {"email": user.email}, csrf(html))
    assert updated.status_code == 303
    assert last_event("org.member_updated").detail["roles"] == []

    unknown = post(
        b, f"/admin/organizations/{org}/members", {"email": "ghost@example.com"}, csrf(html)
    )
    assert unknown.status_code == 404 and "invite them" in (alert(unknown.text) or "")
    forged = post(
        b, f"/admin/organizations/{org}/members", {"email": user.email, "role": "x"}, csrf(html)
    )
    assert forged.status_code == 400 and alert(forged.text)

    sent = post(
        b,
        f"/admin/organizations/{org}/invitations",
        {"email": "Guest@Example.com", "role": role},
        csrf(html),
    )
    assert sent.status_code == 303
    mailbox.wait()
    assert mailbox.token_for("guest@example.com", "/account/invitation")
    page = b.get(sent.headers["location"]).text
    assert status(page) == "Invitation sent." and "guest@example.com" in page
    bad = post(b, f"/admin/organizations/{org}/invitations", {"email": "nope"}, csrf(html))
    assert bad.status_code == 422 and (alert(bad.text) or "").startswith("Email")
    with Session(get_engine(), expire_on_commit=False) as session:
        invitation = session.exec(
            select(Invitation).where(Invitation.email == "guest@example.com")
        ).one()
        session.commit()
    revoke = f"/admin/organizations/{org}/invitations/{invitation.id}/revoke"
    assert post(b, revoke, {}, csrf(html)).status_code == 303
    assert post(b, revoke, {}, csrf(html)).status_code == 404

    removed = post(b, f"/admin/organizations/{org}/members/{user.id}/remove", {}, csrf(html))
    assert removed.status_code == 303
    again = post(b, f"/admin/organizations/{org}/members/{user.id}/remove", {}, csrf(html))
    assert again.status_code == 404

    confirm = b.get(f"/admin/organizations/{org}", params={"confirm": "delete"}).text
    deleted = post(b, f"/admin/organizations/{org}/delete", {}, csrf(confirm))
    assert deleted.status_code == 303
    assert b.get(f"/admin/organizations/{org}").status_code == 404


@pytest.mark.parametrize(
    ("form", "expected", "code"),
    [
        ({"name": ""}, "Name", 422),
        ({"name": "N", "slug": "Bad Slug"}, "Slug", 422),
        ({"name": "N", "slug": "acme"}, "exists", 409),
    ],
)
def test_a_bad_organization_form_is_re_shown_with_the_reason(
    client: TestClient,
    admin: User,
    scene: dict[str, Any],
    form: dict[str, str],
    expected: str,
    code: int,
) -> None:
    b, html = sign_in(client, admin.email)
    before = snapshot()
    answer = post(b, "/admin/organizations", form, csrf(html))
    assert answer.status_code == code
    assert expected in (alert(answer.text) or "")
    assert "Create organization" in answer.text
    assert snapshot() == before


# --- a user's product roles and memberships ----------------------------------------------------


def test_an_admin_sets_a_users_global_roles_with_checkboxes(
    client: TestClient, admin: User, scene: dict[str, Any]
) -> None:
    target = scene["user"]
    b, html = sign_in(client, admin.email, f"/admin/users/{target.id}")
    role = scene["role"]["id"]
    assert f'value="{role}">' in html  # not held globally (only in Acme)
    assert "<td>clerk</td>" in html  # their role in Acme
    saved = post(b, f"/admin/users/{target.id}/product-roles", {"role": role}, csrf(html))
    assert saved.status_code == 303
    page = b.get(saved.headers["location"]).text
    assert status(page) == "Roles saved." and f'value="{role}" checked' in page
    assert last_event("authz.roles_assigned").detail["after"] == ["clerk"]
    cleared = post(b, f"/admin/users/{target.id}/product-roles", {}, csrf(html))
    assert cleared.status_code == 303
    assert snapshot()["user_role"] == 0
    unknown = post(
        b, f"/admin/users/{target.id}/product-roles", {"role": str(uuid.uuid4())}, csrf(html)
    )
    assert unknown.status_code == 422 and "Unknown role" in (alert(unknown.text) or "")


# --- unknown ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/admin/resources/{uuid}",
        "/admin/resources/not-an-id",
        "/admin/roles/{uuid}",
        "/admin/roles/not-an-id",
        "/admin/organizations/{uuid}",
        "/admin/organizations/no-such-slug",
    ],
)
def test_an_unknown_id_is_a_404_page_and_a_post_to_it_too(
    client: TestClient, admin: User, path: str
) -> None:
    b, html = sign_in(client, admin.email)
    target = path.format(uuid=uuid.uuid4())
    assert b.get(target).status_code == 404
    assert post(b, f"{target}/delete", {}, csrf(html)).status_code == 404
