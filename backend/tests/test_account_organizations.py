"""/account/organizations: the person's organizations and their roles there (as GET
/users/me/organizations lists them); leaving one removes the membership and ends the OAuth
sessions bound to it; the last member who manages its members cannot leave (409)."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.models.organization import Membership
from app.models.user import User
from app.oauth.discovery import issuer
from tests.test_authz import add_member as add_membership
from tests.test_authz import create_role
from tests.test_oauth_resources import org_tokens
from tests.utils.account import events
from tests.utils.account_manage import hidden_values, rows
from tests.utils.account_pages import (
    alerts,
    assert_account_headers,
    notices,
    post_form,
    signed_in_overview,
)
from tests.utils.oidc import browser, make_client, refresh_grant

pytestmark = pytest.mark.usefixtures("oidc_issuer")


def _memberships(db: Session, user: User) -> list[Membership]:
    db.expire_all()
    return list(db.exec(select(Membership).where(col(Membership.user_id) == user.id)).all())


@pytest.fixture
def roles(client: TestClient, admin_headers: dict[str, str]) -> dict[str, str]:
    built_in = issuer()  # the service's own resource, under this test's PUBLIC_URL
    manage, read = (built_in, "org:members:manage"), (built_in, "org:members:read")
    manager = create_role(client, admin_headers, "org-admin", manage, read)
    viewer = create_role(client, admin_headers, "viewer")
    return {"org-admin": manager["id"], "viewer": viewer["id"]}


def test_the_page_lists_organizations_and_roles(
    client: TestClient, db: Session, user: User, roles: dict[str, str]
) -> None:
    add_membership(db, user, [roles["viewer"], roles["org-admin"]], slug="acme")
    add_membership(db, user, [], slug="globex")
    b = browser(client)
    signed_in_overview(b, user.email)
    listed = b.get("/account/organizations")
    assert listed.status_code == 200
    assert_account_headers(listed)
    assert rows(listed) == [
        "Acme (acme) Your roles: org-admin viewer Leave",
        "Globex (globex) Your roles: none Leave",
    ]


def test_no_organization_says_so(client: TestClient, user: User) -> None:
    b = browser(client)
    signed_in_overview(b, user.email)
    listed = b.get("/account/organizations")
    assert "You are not a member of any organization." in listed.text


def test_leaving_ends_the_sessions_bound_to_the_organization(
    client: TestClient, db: Session, user: User, roles: dict[str, str]
) -> None:
    acme = add_membership(db, user, [roles["viewer"]], slug="acme")
    add_membership(db, user, [], slug="globex")
    org_client = make_client(db, first_party=True, organization_usage="allow")
    bound = org_tokens(client, db, user, org_client, slug="acme")
    elsewhere = org_tokens(client, db, user, org_client, slug="globex")
    b = browser(client)
    signed_in_overview(b, user.email)
    listed = b.get("/account/organizations")
    assert str(acme.id) in hidden_values(listed, "organization")

    left = post_form(b, listed, "/account/organizations/leave", organization=str(acme.id))
    assert left.status_code == 303
    after = b.get(left.headers["location"])
    assert notices(after) == [
        "You have left the organization. Sessions that applications opened for it have ended."
    ]
    assert [text.split()[0] for text in rows(after)] == ["Globex"]
    assert acme.id not in [m.organization_id for m in _memberships(db, user)]
    assert refresh_grant(client, org_client, bound["refresh_token"]).status_code == 400
    assert refresh_grant(client, org_client, elsewhere["refresh_token"]).status_code == 200
    [event] = events("org.member_removed")
    assert event.subject_id == user.id and event.actor_id == user.id
    assert event.detail == {"organization_id": str(acme.id)}

    again = post_form(b, after, "/account/organizations/leave", organization=str(acme.id))
    assert again.status_code == 404
    assert alerts(again) == ["You are not a member of that organization."]
    for bad in ("not-an-id", "", "x" * 5000):
        refused = post_form(b, after, "/account/organizations/leave", organization=bad)
        assert refused.status_code == 404


def test_the_last_manager_cannot_leave(
    client: TestClient,
    db: Session,
    user: User,
    roles: dict[str, str],
    user_factory: Any,
) -> None:
    acme = add_membership(db, user, [roles["org-admin"]], slug="acme")
    colleague = user_factory(email="colleague@example.com")
    add_membership(db, colleague, [roles["viewer"]], slug="acme")
    b = browser(client)
    signed_in_overview(b, user.email)
    listed = b.get("/account/organizations")
    refused = post_form(b, listed, "/account/organizations/leave", organization=str(acme.id))
    assert refused.status_code == 409
    assert_account_headers(refused)
    assert alerts(refused) == [
        "You are the last member who manages this organization's members, so you cannot "
        "leave it. Give that role to another member first."
    ]
    assert len(_memberships(db, user)) == 1
    assert events("org.member_removed") == []

    # a plain member leaves; so does a manager once another member manages too
    other = browser(client)
    signed_in_overview(other, colleague.email)
    page = other.get("/account/organizations")
    assert (
        post_form(
            other, page, "/account/organizations/leave", organization=str(acme.id)
        ).status_code
        == 303
    )
    second = user_factory(email="second@example.com")
    add_membership(db, second, [roles["org-admin"]], slug="acme")
    assert (
        post_form(b, listed, "/account/organizations/leave", organization=str(acme.id)).status_code
        == 303
    )
    assert _memberships(db, user) == []


def test_pages_of_the_list_follow_their_cursor(
    client: TestClient, db: Session, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.web.account import organizations

    monkeypatch.setattr(organizations, "PAGE_SIZE", 2)
    for slug in ("a-org", "b-org", "c-org"):
        add_membership(db, user, [], slug=slug)
    b = browser(client)
    signed_in_overview(b, user.email)
    first = b.get("/account/organizations")
    assert len(rows(first)) == 2
    more = first.text.split('<p class="links"><a href="')[1].split('"')[0]
    second = b.get(more.replace("&amp;", "&"))
    assert len(rows(second)) == 1
    bad = b.get("/account/organizations", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    assert b.get("/account/organizations", params={"cursor": "x" * 5000}).status_code == 400


def test_leaving_needs_this_browsers_csrf_token(
    client: TestClient, db: Session, user: User
) -> None:
    acme = add_membership(db, user, [], slug="acme")
    b = browser(client)
    signed_in_overview(b, user.email)
    forged = b.post(
        "/account/organizations/leave", data={"csrf_token": "x", "organization": str(acme.id)}
    )
    assert forged.status_code == 403
    assert len(_memberships(db, user)) == 1
