"""The admin console (CONSOLE.md) over HTTP, driven like a browser through the hosted login:
what each role sees, that every control is decided by the permission matrix (a forged POST
is 403 and changes nothing), CSRF on every form, and that each change goes through the
shared helpers, audited with the admin as actor."""

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from app.core.config import Settings
from app.core.permissions import Role
from app.crud import clients as client_rows
from app.crud.console import CONSOLE_CLIENT_ID
from app.db import get_engine, transaction
from app.errors import LastAdmin
from app.models.audit import AuditEvent
from app.models.client import OAuthClient
from app.models.lockout import LoginFailure
from app.models.session import AuthSession
from app.models.user import User
from app.web.pages import PAGE_CSP
from tests.test_mfa import enable_totp
from tests.utils import PASSWORD, api, auth_header, login, refresh_tokens
from tests.utils.console import alert, csrf, post_forms, query, sign_in, status
from tests.utils.oidc import ISSUER, browser, is_login_page, make_client, submit_login

pytestmark = pytest.mark.usefixtures("oidc_issuer")


def snapshot() -> dict[str, Any]:
    """Everything a console action could change."""
    with Session(get_engine()) as session:
        people = session.exec(
            select(User.email, User.role, User.is_active, User.mfa_enabled).order_by(User.email)
        ).all()
        live = session.exec(
            select(AuthSession.id).where(col(AuthSession.revoked_at).is_(None))
        ).all()
        state = {
            "users": [tuple(row) for row in people],
            "sessions": sorted(map(str, live)),
            "failures": session.exec(select(func.count()).select_from(LoginFailure)).one(),
            "clients": sorted(session.exec(select(OAuthClient.client_id)).all()),
            "events": session.exec(select(func.count()).select_from(AuditEvent)).one(),
        }
        session.commit()
        return state


def actions_of(target: User, session_id: str, client_id: str) -> dict[str, tuple[str, Any]]:
    base = f"/admin/users/{target.id}"
    return {
        "role": (f"{base}/role", {"role": "admin"}),
        "deactivate": (f"{base}/active", {"active": "false"}),
        "unlock": (f"{base}/unlock", {}),
        "reset-mfa": (f"{base}/mfa/reset", {}),
        "revoke": (f"{base}/sessions/{session_id}/revoke", {}),
        "sign-out-everywhere": (f"{base}/sessions/revoke-all", {}),
        "delete": (f"{base}/delete", {}),
        "create-client": (
            "/admin/clients",
            {"name": "X", "redirect_uris": REDIRECT, "grant": ["authorization_code"]},
        ),
        "delete-client": (f"/admin/clients/{client_id}/delete", {}),
    }


ACTIONS = [
    "role",
    "deactivate",
    "unlock",
    "reset-mfa",
    "revoke",
    "sign-out-everywhere",
    "delete",
    "create-client",
    "delete-client",
]
REDIRECT = "https://x.example.com/cb"


@pytest.fixture
def scene(
    client: TestClient, db: Session, user: User, user_headers: dict[str, str]
) -> dict[str, Any]:
    """A user with TOTP, a live API session, a failed login counted, and a client."""
    enable_totp(client, user_headers)
    with Session(get_engine()) as session:
        session_id = str(
            session.exec(select(AuthSession.id).where(AuthSession.user_id == user.id)).first()
        )
        session.commit()
    wrong = client.post(api("/auth/login"), data={"username": user.email, "password": "nope-x"})
    assert wrong.status_code == 401
    registered = make_client(db)
    return {"user": user, "session_id": session_id, "client_id": registered.client_id}


def post(b: httpx.Client, path: str, data: dict[str, Any], token: str | None) -> httpx.Response:
    body = {**data, **({"csrf_token": token} if token is not None else {})}
    return b.post(path, data=body)


# --- signing in ---------------------------------------------------------------------------


def test_the_console_signs_in_on_the_hosted_login_as_a_built_in_first_party_client(
    client: TestClient, admin: User
) -> None:
    b = browser(client)
    first = b.get("/admin/users?q=ada&role=admin")
    assert first.status_code == 303
    params = query(first.headers["location"])
    assert first.headers["location"].startswith(f"{ISSUER}/oauth/authorize?")  # at PUBLIC_URL
    assert params["client_id"] == CONSOLE_CLIENT_ID
    assert params["redirect_uri"] == f"{ISSUER}/admin/callback"
    assert params["state"] == "/admin/users?q=ada&role=admin"
    with Session(get_engine()) as session:
        row = client_rows.get_client(session, CONSOLE_CLIENT_ID)
        assert row is not None and row.first_party and row.public and row.secret_digest is None
        assert row.redirect_uris == [f"{ISSUER}/admin/callback"]
        session.commit()
    # No consent page (first-party), back to the page asked for.
    _, html = sign_in(client, admin.email, "/admin/users?q=ada&role=admin")
    assert "<h1>Users</h1>" in html


def test_the_console_client_is_put_back_when_public_url_or_an_edit_changed_it(
    client: TestClient, admin: User, admin_headers: dict[str, str]
) -> None:
    sign_in(client, admin.email)
    changed = client.patch(
        api(f"/clients/{CONSOLE_CLIENT_ID}"),
        headers=admin_headers,
        json={"redirect_uris": ["https://evil.example.com/cb"], "first_party": False},
    )
    assert changed.status_code == 200
    sign_in(client, admin.email)
    row = client.get(api(f"/clients/{CONSOLE_CLIENT_ID}"), headers=admin_headers).json()
    assert row["redirect_uris"] == [f"{ISSUER}/admin/callback"] and row["first_party"]


@pytest.mark.parametrize(
    "next_url", ["https://evil.example.com/", "//evil.example.com/admin", "/x", "/administrator"]
)
def test_the_callback_only_returns_to_console_pages(
    client: TestClient, admin: User, next_url: str
) -> None:
    b, _ = sign_in(client, admin.email)
    answer = b.get("/admin/callback", params={"state": next_url, "code": "x"})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin"


def test_the_callback_without_a_browser_session_says_so_instead_of_looping(
    client: TestClient,
) -> None:
    answer = browser(client).get("/admin/callback", params={"error": "access_denied"})
    assert answer.status_code == 400 and "Sign-in did not complete" in answer.text


def test_sign_out_ends_the_browser_session_single_sign_on_included(
    client: TestClient, admin: User
) -> None:
    b, html = sign_in(client, admin.email)
    assert post(b, "/admin/logout", {}, None).status_code == 403  # CSRF here too
    assert b.get("/admin").status_code == 200
    answer = post(b, "/admin/logout", {}, csrf(html))
    assert answer.status_code == 200 and "Signed out" in answer.text
    again = b.get("/admin")
    assert again.status_code == 303
    assert is_login_page(b.get(again.headers["location"]))  # not signed in by SSO
    with Session(get_engine()) as session:
        rows = session.exec(select(AuthSession).where(AuthSession.user_id == admin.id)).all()
        assert rows and all(row.revoked_at is not None for row in rows)
        session.commit()


def test_a_post_without_a_browser_session_is_403_and_changes_nothing(
    client: TestClient, scene: dict[str, Any]
) -> None:
    before = snapshot()
    target = scene["user"]
    answer = browser(client).post(f"/admin/users/{target.id}/delete", data={"csrf_token": "x"})
    assert answer.status_code == 403
    assert snapshot() == before


# --- the permission matrix decides each control ----------------------------------------------

PAGES = ["/admin", "/admin/users", "/admin/users/{id}", "/admin/audit", "/admin/clients"]


def test_a_plain_user_gets_a_403_on_every_page_and_every_post(
    client: TestClient, scene: dict[str, Any], user_factory: Callable[..., User]
) -> None:
    target = scene["user"]
    plain = user_factory(Role.USER, email="plain@example.com")
    b, html = sign_in_refused(client, plain.email)
    for page in PAGES:
        answer = b.get(page.format(id=target.id))
        assert answer.status_code == 403, page
        assert "may not use the console" in answer.text
        assert post_forms(answer.text) == ["/admin/logout"]
    before = snapshot()
    token = csrf(html)
    for path, data in actions_of(target, scene["session_id"], scene["client_id"]).values():
        assert post(b, path, data, token).status_code == 403, path
    assert snapshot() == before
    assert "Signed out" in post(b, "/admin/logout", {}, token).text  # they may sign out
    assert b.get("/admin").status_code == 303


def sign_in_refused(client: TestClient, email: str) -> tuple[httpx.Client, str]:
    """Sign in as a role the console refuses: the page after the login is the 403."""
    b = browser(client)
    first = b.get("/admin")
    answer = submit_login(b, b.get(first.headers["location"]), email, PASSWORD)
    b.get(answer.headers["location"])
    page = b.get("/admin")
    assert page.status_code == 403
    return b, page.text


def test_a_moderator_reads_users_and_sessions_without_a_single_control(
    client: TestClient, moderator: User, scene: dict[str, Any]
) -> None:
    target = scene["user"]
    b, html = sign_in(client, moderator.email)
    assert target.email in html and post_forms(html) == ["/admin/logout"]
    page = b.get(f"/admin/users/{target.id}")
    assert page.status_code == 200
    assert post_forms(page.text) == ["/admin/logout"]
    assert '<h2 id="sessions-heading">Sessions</h2>' in page.text
    assert page.text.count("<td>api</td>") == 1  # the user's live API session
    for hidden in ("Save role", "Deactivate", "Unlock", "Reset MFA", "Delete user", "Revoke<"):
        assert hidden not in page.text
    assert "History" not in page.text  # the audit log is admin-only
    assert b.get(f"/admin/users/{target.id}?confirm=delete").text.count("Delete") == 0
    assert b.get("/admin/audit").status_code == 403
    assert b.get("/admin/clients").status_code == 403
    assert "Audit log" not in html and "Clients" not in html


def test_a_forged_post_by_a_moderator_is_403_and_changes_nothing(
    client: TestClient, moderator: User, scene: dict[str, Any]
) -> None:
    b, html = sign_in(client, moderator.email)
    forms = actions_of(scene["user"], scene["session_id"], scene["client_id"])
    before = snapshot()
    for action in ACTIONS:
        path, data = forms[action]
        answer = post(b, path, data, csrf(html))  # the moderator's own, valid CSRF token
        assert answer.status_code == 403, action
        assert alert(answer.text) == "Your role may not do this.", action
        assert snapshot() == before, action


# --- CSRF on every form ----------------------------------------------------------------------


def test_every_form_refuses_a_post_without_this_browser_sessions_csrf_token(
    client: TestClient, admin: User, scene: dict[str, Any]
) -> None:
    b, html = sign_in(client, admin.email)
    _, other_html = sign_in(client, admin.email)  # the same admin in another browser
    forms = actions_of(scene["user"], scene["session_id"], scene["client_id"])
    forms["logout"] = ("/admin/logout", {})
    before = snapshot()
    for action, (path, data) in forms.items():
        for token in (None, "", "0" * 64, csrf(html)[:-1] + "x", csrf(other_html)):
            answer = post(b, path, data, token)
            assert answer.status_code == 403, (action, token)
            assert "This form has expired" in answer.text
        assert snapshot() == before, action
    assert b.get("/admin").status_code == 200  # still signed in


def test_the_csrf_token_changes_with_the_browser_session(client: TestClient, admin: User) -> None:
    b, html = sign_in(client, admin.email)
    post(b, "/admin/logout", {}, csrf(html))
    first = b.get("/admin")
    answer = submit_login(b, b.get(first.headers["location"]), admin.email, PASSWORD)
    b.get(answer.headers["location"])
    fresh = b.get("/admin").text
    assert csrf(fresh) != csrf(html)
    assert post(b, f"/admin/users/{admin.id}/unlock", {}, csrf(html)).status_code == 403


# --- each action, through the shared helpers, audited with the admin as actor --------------

EVENTS = {
    "role": "user.role_changed",
    "deactivate": "user.updated",
    "unlock": "user.unlocked",
    "reset-mfa": "mfa.disabled",
    "revoke": "auth.logout",
    "sign-out-everywhere": "auth.logout",
    "delete": "user.deleted",
    "create-client": "oauth.client_created",
    "delete-client": "oauth.client_deleted",
}


def last_event(name: str) -> AuditEvent:
    with Session(get_engine(), expire_on_commit=False) as session:
        row = session.exec(
            select(AuditEvent).where(AuditEvent.event == name).order_by(col(AuditEvent.id).desc())
        ).first()
        session.commit()
    assert row is not None, name
    return row


@pytest.mark.parametrize("action", ACTIONS)
def test_an_admin_does_each_action_audited_with_the_admin_as_actor(
    client: TestClient, admin: User, scene: dict[str, Any], action: str
) -> None:
    b, html = sign_in(client, admin.email)
    target = scene["user"]
    path, data = actions_of(target, scene["session_id"], scene["client_id"])[action]
    before = snapshot()
    answer = post(b, path, data, csrf(html))
    assert answer.status_code in (201, 303), answer.text
    if answer.status_code == 303:
        landed = b.get(answer.headers["location"])
        assert landed.status_code == 200 and status(landed.text), landed.text
    after = snapshot()
    assert after != before
    event = last_event(EVENTS[action])
    assert event.actor_id == admin.id
    if action.endswith("client"):
        assert event.detail["client_id"] in (scene["client_id"], *after["clients"])
    else:
        assert event.subject_id == target.id


def test_role_activation_and_sessions_take_effect_through_the_api(
    client: TestClient, admin: User, admin_headers: dict[str, str], user: User
) -> None:
    phone = login(client, user.email)
    laptop = login(client, user.email)
    b, html = sign_in(client, admin.email)
    token = csrf(html)
    assert post(b, f"/admin/users/{user.id}/role", {"role": "moderator"}, token).status_code == 303
    assert client.get(api(f"/users/{user.id}"), headers=admin_headers).json()["role"] == "moderator"
    page = b.get(f"/admin/users/{user.id}").text
    session_ids = re.findall(rf"/admin/users/{user.id}/sessions/([0-9a-f-]{{36}})/revoke", page)
    assert len(session_ids) == 2
    with Session(get_engine()) as session:
        newest = session.exec(
            select(AuthSession.id)
            .where(AuthSession.user_id == user.id)
            .order_by(col(AuthSession.created_at).desc(), col(AuthSession.id))
        ).all()
        session.commit()
    # Revoke the laptop's session (found by its refresh token's session row).
    laptop_me = client.get(api("/users/me/sessions"), headers=auth_header(laptop)).json()
    laptop_id = next(row["id"] for row in laptop_me if row["current"])
    assert laptop_id in session_ids and len(newest) == 2
    revoked = post(b, f"/admin/users/{user.id}/sessions/{laptop_id}/revoke", {}, token)
    assert revoked.status_code == 303
    assert refresh_tokens(client, laptop["refresh_token"]).status_code == 401
    assert laptop_id not in b.get(f"/admin/users/{user.id}").text  # it leaves the list
    assert client.get(api("/users/me"), headers=auth_header(phone)).status_code == 200
    assert post(b, f"/admin/users/{user.id}/active", {"active": "false"}, token).status_code == 303
    assert client.get(api("/users/me"), headers=auth_header(phone)).status_code == 401
    assert client.get(api(f"/users/{user.id}"), headers=admin_headers).json()["is_active"] is False
    page = b.get(f"/admin/users/{user.id}").text
    assert ">Activate</button>" in page and "No live sessions." in page
    assert post(b, f"/admin/users/{user.id}/active", {"active": "true"}, token).status_code == 303
    assert login(client, user.email)["access_token"]


def test_unlock_lets_a_locked_out_user_log_in_again(
    client: TestClient, admin: User, user: User, settings: Callable[..., Settings]
) -> None:
    settings(MAX_FAILED_LOGINS=2)
    for _ in range(3):
        client.post(api("/auth/login"), data={"username": user.email, "password": "wrong-pw"})
    locked = client.post(api("/auth/login"), data={"username": user.email, "password": PASSWORD})
    assert locked.status_code == 429
    b, html = sign_in(client, admin.email)
    assert post(b, f"/admin/users/{user.id}/unlock", {}, csrf(html)).status_code == 303
    assert login(client, user.email)["access_token"]


def test_reset_mfa_lets_the_user_log_in_with_the_password_alone(
    client: TestClient, admin: User, user: User, user_headers: dict[str, str]
) -> None:
    enable_totp(client, user_headers)
    assert (
        "mfa_token"
        in client.post(
            api("/auth/login"), data={"username": user.email, "password": PASSWORD}
        ).json()
    )
    b, html = sign_in(client, admin.email)
    answer = post(b, f"/admin/users/{user.id}/mfa/reset", {}, csrf(html))
    assert (status(b.get(answer.headers["location"]).text) or "").startswith("Two-factor")
    assert login(client, user.email)["access_token"]
    again = post(b, f"/admin/users/{user.id}/mfa/reset", {}, csrf(html))
    assert "nothing changed" in (status(b.get(again.headers["location"]).text) or "")


def test_delete_asks_to_confirm_and_lands_on_the_users_page(
    client: TestClient, admin: User, user: User
) -> None:
    b, _ = sign_in(client, admin.email)
    page = b.get(f"/admin/users/{user.id}").text
    assert f'<form method="post" action="/admin/users/{user.id}/delete"' not in page
    confirm = b.get(f"/admin/users/{user.id}", params={"confirm": "delete"}).text
    assert f'<form method="post" action="/admin/users/{user.id}/delete"' in confirm
    assert ">Delete</button>" in confirm
    answer = post(b, f"/admin/users/{user.id}/delete", {}, csrf(confirm))
    assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/users")
    landed = b.get(answer.headers["location"])
    assert status(landed.text) == "User deleted." and user.email not in landed.text
    assert b.get(f"/admin/users/{user.id}").status_code == 404


# --- the last-admin rule, as a clear message ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "data"),
    [("role", {"role": "moderator"}), ("active", {"active": "false"}), ("delete", {})],
)
def test_the_last_admin_is_refused_with_the_reason_and_nothing_changes(
    client: TestClient, admin: User, path: str, data: dict[str, str]
) -> None:
    b, html = sign_in(client, admin.email)
    before = snapshot()
    answer = post(b, f"/admin/users/{admin.id}/{path}", data, csrf(html))
    assert answer.status_code == 409
    assert alert(answer.text) == LastAdmin.detail
    assert f"<h1>{admin.email}</h1>" in answer.text
    assert snapshot() == before


def test_a_bad_role_is_refused_with_a_message(client: TestClient, admin: User, user: User) -> None:
    b, html = sign_in(client, admin.email)
    answer = post(b, f"/admin/users/{user.id}/role", {"role": "root"}, csrf(html))
    assert answer.status_code == 400 and alert(answer.text)


# --- users list: search, filters, cursor paging ------------------------------------------------


def test_users_search_filters_and_cursor_paging(
    client: TestClient, admin: User, user_factory: Callable[..., User]
) -> None:
    for n in range(55):
        user_factory(Role.USER, email=f"page{n:02d}@example.com", full_name=f"Pager {n}")
    user_factory(Role.MODERATOR, email="mod@example.com", full_name="Ada Lovelace")
    user_factory(Role.USER, email="gone@example.com", is_active=False)
    b, html = sign_in(client, admin.email)
    assert html.count("<tr>") == 50 + 1  # 50 rows and the header
    assert ">Next<" in html and ">Previous<" not in html
    assert re.search(r"<th scope=\"col\">Email</th>.*<th scope=\"col\">Created</th>", html)

    searched = b.get("/admin/users", params={"q": "page", "role": "user", "active": "true"})
    next_url = re.search(r'<a href="([^"]+)" rel="next">Next</a>', searched.text)
    assert next_url
    following = query(next_url.group(1).replace("&amp;", "&"))
    assert following.pop("cursor")  # a keyset cursor: where the next page starts
    assert following == {"q": "page", "role": "user", "active": "true"}
    second = b.get(next_url.group(1).replace("&amp;", "&")).text
    assert second.count("<tr>") == 5 + 1 and ">Previous<" in second and ">Next<" not in second
    assert "page54@example.com" in second
    previous = re.search(r'<a href="([^"]+)" rel="prev">Previous</a>', second)
    assert previous
    assert query(previous.group(1).replace("&amp;", "&")) == following  # the first page

    by_name = b.get("/admin/users", params={"q": "lovelace"}).text
    assert "mod@example.com" in by_name and "page00" not in by_name
    mods = b.get("/admin/users", params={"role": "moderator"}).text
    assert "mod@example.com" in mods and "page00" not in mods
    inactive = b.get("/admin/users", params={"active": "false"}).text
    assert "gone@example.com" in inactive and "page00" not in inactive
    assert "<td>no</td>" in inactive


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "abc"},
        {"cursor": "-1"},
        {"back": "not-a-cursor"},
        {"role": "root"},
        {"active": "maybe"},
    ],
)
def test_bad_filters_and_cursors_get_a_clear_400_page(
    client: TestClient, admin: User, params: dict[str, str]
) -> None:
    b, _ = sign_in(client, admin.email)
    answer = b.get("/admin/users", params=params)
    assert answer.status_code == 400 and alert(answer.text)


@pytest.mark.parametrize("path", ["/admin/users/not-a-uuid", "/admin/users/" + "0" * 32])
def test_an_unknown_user_is_a_404_page(client: TestClient, admin: User, path: str) -> None:
    b, _ = sign_in(client, admin.email)
    assert b.get(path).status_code == 404


# --- audit log ---------------------------------------------------------------------------------


def test_the_audit_log_filters_by_event_actor_and_subject_email(
    client: TestClient, admin: User, user: User
) -> None:
    b, html = sign_in(client, admin.email)
    post(b, f"/admin/users/{user.id}/unlock", {}, csrf(html))
    page = b.get("/admin/audit").text
    assert "<h1>Audit log</h1>" in page and "<code>user.unlocked</code>" in page
    assert page.index("user.unlocked") < page.index("user.created")  # newest first
    only = b.get("/admin/audit", params={"event": "user.unlocked"}).text
    assert "user.created" not in only and only.count("<code>user.unlocked</code>") == 1
    by_actor = b.get("/admin/audit", params={"actor": admin.email}).text
    assert "user.unlocked" in by_actor and "user.created" not in by_actor
    by_subject = b.get("/admin/audit", params={"subject": user.email}).text
    assert "user.unlocked" in by_subject and "auth.login_succeeded" not in by_subject
    unknown = b.get("/admin/audit", params={"subject": "nobody@example.com"}).text
    assert alert(unknown) == "No user has the email nobody@example.com."
    assert "No events match." in unknown


# --- clients -----------------------------------------------------------------------------------


def test_an_admin_registers_a_client_and_sees_its_secret_once(
    client: TestClient, admin: User
) -> None:
    b, html = sign_in(client, admin.email)
    form = {
        "name": "Billing",
        "redirect_uris": "https://billing.example.com/cb\r\nhttp://127.0.0.1:9000/cb\r\n",
        "grant": ["authorization_code", "client_credentials"],
        "first_party": "yes",
    }
    answer = post(b, "/admin/clients", form, csrf(html))
    assert answer.status_code == 201
    secret = re.search(r'<code class="secret">([^<]+)</code>', answer.text)
    assert secret and 'role="status"' in answer.text
    with Session(get_engine(), expire_on_commit=False) as session:
        row = session.exec(select(OAuthClient).where(OAuthClient.name == "Billing")).one()
        session.commit()
    assert client_rows.secret_matches(row, secret.group(1))
    assert row.first_party and not row.public
    assert row.grant_types == ["authorization_code", "client_credentials"]
    assert row.redirect_uris == ["https://billing.example.com/cb", "http://127.0.0.1:9000/cb"]
    listed = b.get("/admin/clients").text
    assert "Billing" in listed and secret.group(1) not in listed

    spa = {"name": "SPA", "redirect_uris": REDIRECT, "public": "yes", "grant": "authorization_code"}
    public = post(b, "/admin/clients", spa, csrf(html))
    assert public.status_code == 201 and 'class="secret"' not in public.text


@pytest.mark.parametrize(
    "form",
    [
        {"name": "X", "redirect_uris": "http://evil.example.com/cb"},
        {"name": "X", "redirect_uris": ""},
        {"name": "", "redirect_uris": REDIRECT},
        {"name": "X", "redirect_uris": REDIRECT, "grant": ["implicit"]},
    ],
)
def test_a_bad_client_form_is_refused_with_a_message(
    client: TestClient, admin: User, form: dict[str, Any]
) -> None:
    b, html = sign_in(client, admin.email)
    before = snapshot()
    answer = post(b, "/admin/clients", form, csrf(html))
    assert answer.status_code == 422 and alert(answer.text)
    assert snapshot() == before


def test_deleting_a_client_asks_to_confirm_and_the_console_client_stays(
    client: TestClient, db: Session, admin: User
) -> None:
    registered = make_client(db)
    b, html = sign_in(client, admin.email)
    page = b.get("/admin/clients").text
    delete_form = f'action="/admin/clients/{registered.client_id}/delete"'
    assert delete_form not in page and CONSOLE_CLIENT_ID in page
    confirm = b.get("/admin/clients", params={"confirm": registered.client_id}).text
    assert delete_form in confirm
    answer = post(b, f"/admin/clients/{registered.client_id}/delete", {}, csrf(confirm))
    assert answer.status_code == 303
    landed = status(b.get(answer.headers["location"]).text) or ""
    assert landed.startswith("Client deleted")
    assert client_rows.get_client(db, registered.client_id) is None
    builtin = post(b, f"/admin/clients/{CONSOLE_CLIENT_ID}/delete", {}, csrf(html))
    assert builtin.status_code == 400 and alert(builtin.text)
    assert client_rows.get_client(db, CONSOLE_CLIENT_ID) is not None


# --- the pages themselves ------------------------------------------------------------------------


def test_console_pages_have_the_hosted_pages_csp_titles_and_no_external_assets(
    client: TestClient, admin: User, user: User
) -> None:
    b, _ = sign_in(client, admin.email)
    titles = {
        "/admin/users": "Users",
        f"/admin/users/{user.id}": user.email,
        "/admin/audit": "Audit log",
        "/admin/clients": "Clients",
    }
    for path, title in titles.items():
        answer = b.get(path)
        assert answer.headers["content-security-policy"] == PAGE_CSP
        assert answer.headers["cache-control"] == "no-store"
        assert re.search(rf"<title>{re.escape(title)} ·", answer.text), path
        assert not re.search(r'(src|href)="(https?:)?//', answer.text), path
    assert b.get("/oauth/static/console.css").status_code == 200


def test_the_console_client_alone_does_not_need_the_oidc_signing_key_in_production(
    client: TestClient, db: Session, admin: User, settings: Callable[..., Settings]
) -> None:
    import typer

    import manage
    from app.core import keys
    from app.core.config import Environment

    sign_in(client, admin.email)  # the console's client row now exists
    settings(ENVIRONMENT=Environment.PRODUCTION)
    keys.forget()
    try:
        manage._ensure_oidc_key(db)  # the console signs nothing: manage serve starts
        make_client(db)
        with pytest.raises(typer.Exit):
            manage._ensure_oidc_key(db)  # a registered client needs the key
    finally:
        keys.forget()


def test_two_first_sign_ins_at_once_create_one_console_client() -> None:
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from sqlalchemy import delete

    from app.crud.console import ensure_console_client

    def ensure(barrier: Barrier) -> str:
        with Session(get_engine(), expire_on_commit=False) as session:
            barrier.wait()
            row = transaction(
                ensure_console_client, session, redirect_uri=f"{ISSUER}/admin/callback"
            )
            return row.client_id

    for _ in range(5):
        barrier = Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(ensure, [barrier] * 2)) == [CONSOLE_CLIENT_ID] * 2
        with Session(get_engine()) as session:
            created = session.exec(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.event == "oauth.client_created")
            ).one()
            assert created == 1
            assert session.exec(select(func.count()).select_from(OAuthClient)).one() == 1
            session.execute(delete(AuditEvent))
            session.execute(delete(OAuthClient))
            session.commit()


def test_previous_walks_back_through_keyset_pages(
    client: TestClient, admin: User, user_factory: Callable[..., User]
) -> None:
    from app.web.console import paging

    paging_size = paging.PAGE_SIZE
    for n in range(2 * paging_size + 3):
        user_factory(Role.USER, email=f"walk{n:03d}@example.com")
    b, first = sign_in(client, admin.email)
    pages = [first]
    while match := re.search(r'<a href="([^"]+)" rel="next">Next</a>', pages[-1]):
        pages.append(b.get(match.group(1).replace("&amp;", "&")).text)
    assert len(pages) == 3
    emails = [set(re.findall(r">([^<>]+@example\.com)</a>", page)) for page in pages]
    assert sum(map(len, emails)) == 2 * paging_size + 4  # every user once, the admin too
    back = pages[-1]
    for expected in reversed(emails[:-1]):
        match = re.search(r'<a href="([^"]+)" rel="prev">Previous</a>', back)
        assert match
        back = b.get(match.group(1).replace("&amp;", "&")).text
        assert set(re.findall(r">([^<>]+@example\.com)</a>", back)) == expected
    assert ">Previous<" not in back
