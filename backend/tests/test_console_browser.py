"""A real browser runs the admin console: Chromium signs in as the admin on the hosted login
of a fresh `manage serve`, searches a user, promotes them to moderator, revokes one of their
sessions and deactivates them; the API confirms each change. The test saves the users and
user pages as the screenshots of docs/admin-console.md (docs/console-users.png,
docs/console-user.png).

Needs Chromium at /usr/bin/chromium and the `browser` extra (Playwright); `.ci/browser`
installs both. Run with `pytest -m browser`. Deselected by default.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.utils.browser import chromium
from tests.utils.server import running_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

ADMIN = "ada@example.com"
PASSWORD = "browser-password-123"
DOCS = Path(__file__).resolve().parents[2] / "docs"
PEOPLE = [
    ("grace@example.com", "Grace Hopper"),
    ("alan@example.com", "Alan Turing"),
    ("edsger@example.com", "Edsger Dijkstra"),
    ("barbara@example.com", "Barbara Liskov"),
    ("ken@example.com", "Ken Thompson"),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`manage serve` on a fresh directory, nothing configured but the first admin."""
    workdir = tmp_path_factory.mktemp("console-live")
    env = {
        "ENVIRONMENT": "development",  # http on loopback: cookies without Secure
        "DATABASE_URL": f"sqlite:///{workdir}/live.db",
        "SECRET_KEY_FILE": str(workdir / ".secret_key"),
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": "",
        "FIRST_SUPERUSER_EMAIL": ADMIN,
        "FIRST_SUPERUSER_FULL_NAME": "Ada Lovelace",
        "FIRST_SUPERUSER_PASSWORD": PASSWORD,
        "PUBLIC_URL": "http://127.0.0.1:{port}",
    }
    with running_server(env, log_path=workdir / "server.log") as base:
        yield base


@pytest.fixture
def page(tmp_path: Path) -> Iterator["Page"]:
    with chromium(tmp_path / "profile") as context:
        page = context.new_page()
        page.set_viewport_size({"width": 1000, "height": 700})
        yield page


def api_login(api: httpx.Client, email: str, user_agent: str) -> dict[str, str]:
    answer = api.post(
        "/api/v1/auth/login",
        data={"username": email, "password": PASSWORD},
        headers={"User-Agent": user_agent},
    )
    assert answer.status_code == 200, answer.text
    tokens: dict[str, str] = answer.json()
    return tokens


def test_an_admin_finds_promotes_signs_out_and_deactivates_a_user_in_chromium(
    live: str, page: "Page"
) -> None:
    from playwright.sync_api import expect

    api = httpx.Client(base_url=live, timeout=10)
    for email, name in PEOPLE:
        body = {"email": email, "password": PASSWORD, "full_name": name}
        assert api.post("/api/v1/auth/register", json=body).status_code == 201
    phone = api_login(api, "grace@example.com", "Grace's phone (Android)")
    laptop = api_login(api, "grace@example.com", "Grace's stolen laptop (Firefox)")
    admin = {"Authorization": f"Bearer {api_login(api, ADMIN, 'curl')['access_token']}"}
    grace_id = api.get("/api/v1/users", params={"q": "grace"}, headers=admin).json()["items"][0][
        "id"
    ]
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    # Sign in on the hosted login page; the console comes back to the users page.
    page.goto(f"{live}/admin")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    assert page.url == f"{live}/admin"
    expect(page.locator("tbody tr")).to_have_count(len(PEOPLE) + 1)
    page.screenshot(path=str(DOCS / "console-users.png"))

    # Search, then open the user's page.
    page.get_by_label("Search").fill("grace")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    page.get_by_role("link", name="grace@example.com").click()
    expect(page.get_by_role("heading", name="grace@example.com")).to_be_visible()
    assert "grace@example.com" in page.title()

    # Promote to moderator.
    page.get_by_label("Role", exact=True).select_option("moderator")
    page.get_by_role("button", name="Save role").click()
    expect(page.get_by_role("status")).to_have_text("Role saved.")
    grace = api.get(f"/api/v1/users/{grace_id}", headers=admin).json()
    assert grace["role"] == "moderator"

    # Revoke the stolen laptop's session: only that one ends.
    sessions = page.locator("section", has=page.get_by_role("heading", name="Sessions"))
    laptop_row = sessions.locator("tr", has_text="stolen laptop")
    laptop_row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_have_text("Session revoked.")
    expect(sessions.locator("tr", has_text="stolen laptop")).to_have_count(0)
    refused = api.post("/api/v1/auth/refresh", json={"refresh_token": laptop["refresh_token"]})
    assert refused.status_code == 401
    grace_phone = {"Authorization": f"Bearer {phone['access_token']}"}
    assert api.get("/api/v1/users/me", headers=grace_phone).status_code == 200
    page.screenshot(path=str(DOCS / "console-user.png"), full_page=True)

    # Deactivate: the account is off and its remaining session ends.
    page.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("status")).to_have_text("User deactivated: their sessions have ended.")
    expect(page.get_by_role("button", name="Activate")).to_be_visible()
    grace = api.get(f"/api/v1/users/{grace_id}", headers=admin).json()
    assert grace["is_active"] is False
    assert api.get("/api/v1/users/me", headers=grace_phone).status_code == 401

    # Each change is in the audit log with the admin as actor.
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Actor").fill(ADMIN)
    page.get_by_label("Subject").fill("grace@example.com")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("tbody tr")
    for event in ("user.updated", "auth.logout", "user.role_changed"):
        expect(rows.filter(has_text=event)).to_have_count(1)

    # Sign out ends the browser session: the console asks for the password again.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    page.goto(f"{live}/admin")
    expect(page.get_by_label("Password")).to_be_visible()
    assert all(url.startswith(f"{live}/") for url in requested), requested  # no external assets


def test_an_admin_sets_up_an_organization_that_a_member_then_administers_in_chromium(
    live: str, page: "Page"
) -> None:
    """AUTHZ.md's console: an admin creates an API resource, a role holding organization
    permissions, an organization and its first member; that member (a plain user) then runs
    the organization's invitations, offered only the roles they may grant."""
    from playwright.sync_api import expect

    api = httpx.Client(base_url=live, timeout=10)
    for email in ("olivia@example.com", "new.hire@example.com"):
        body = {"email": email, "password": PASSWORD, "full_name": email.split("@")[0].title()}
        assert api.post("/api/v1/auth/register", json=body).status_code == 201

    page.goto(f"{live}/admin/resources")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="API resources")).to_be_visible()
    nav = page.get_by_role("navigation", name="Console")
    page.get_by_label("Identifier").fill("https://api.example.com/orders")
    page.get_by_label("Name", exact=True).fill("Orders")
    page.get_by_label("Permissions").fill("read:orders = Read orders\nwrite:orders")
    page.get_by_role("button", name="Create resource").click()
    expect(page.get_by_role("status")).to_have_text("Resource created.")

    nav.get_by_role("link", name="Roles").click()
    page.get_by_label("Name", exact=True).fill("org-admin")
    for permission in ("org:members:read", "org:members:manage", "org:invitations:manage"):
        page.get_by_label(permission, exact=True).check()
    page.get_by_role("button", name="Create role").click()
    expect(page.get_by_role("status")).to_have_text("Role created.")
    nav.get_by_role("link", name="Roles").click()
    page.get_by_label("Name", exact=True).fill("clerk")
    page.get_by_label("read:orders", exact=True).check()
    page.get_by_role("button", name="Create role").click()
    expect(page.get_by_role("status")).to_have_text("Role created.")

    nav.get_by_role("link", name="Organizations").click()
    page.get_by_label("Name", exact=True).fill("Acme Corp")
    page.get_by_role("button", name="Create organization").click()
    expect(page.get_by_role("status")).to_have_text("Organization created.")
    adding = page.locator("section", has=page.get_by_role("heading", name="Add or update a member"))
    adding.get_by_label("Email").fill("olivia@example.com")
    adding.get_by_label("org-admin").check()
    adding.get_by_role("button", name="Save member").click()
    expect(page.get_by_role("status")).to_have_text("Member saved.")
    expect(page.locator("tbody tr", has_text="olivia@example.com")).to_contain_text("org-admin")
    page.screenshot(path=str(DOCS / "console-organization.png"), full_page=True)
    organization = page.url.split("/admin/organizations/")[1].split("?")[0]

    # Olivia, a plain user, signs in to the console: she administers Acme Corp only.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    page.goto(f"{live}/admin")
    page.get_by_label("Email").fill("olivia@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Your organizations")).to_be_visible()
    expect(page.get_by_role("button", name="Create organization")).to_have_count(0)
    page.get_by_role("link", name="Acme Corp").click()
    inviting = page.locator("section", has=page.get_by_role("heading", name="Invite"))
    expect(inviting.get_by_label("clerk")).to_have_count(0)  # she lacks read:orders
    inviting.get_by_label("Email").fill("new.hire@example.com")
    inviting.get_by_label("org-admin").check()
    inviting.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_have_text("Invitation sent.")
    expect(page.get_by_role("button", name="Delete organization")).to_have_count(0)
    page.screenshot(path=str(DOCS / "console-delegated.png"), full_page=True)

    admin = {"Authorization": f"Bearer {api_login(api, ADMIN, 'curl')['access_token']}"}
    pending = api.get(f"/api/v1/organizations/{organization}/invitations", headers=admin).json()
    assert [(i["email"], [r["name"] for r in i["roles"]]) for i in pending["items"]] == [
        ("new.hire@example.com", ["org-admin"])
    ]
