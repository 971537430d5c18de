"""/account/invitation?token=: the organization invitation's page. Its GET never spends the
token; it offers sign in or sign up (each coming back here) to a browser not signed in, the
Accept button to the invited and verified address, a 403 page to anyone else (with a way to
sign in with another account) or to an unverified address; a spent, revoked, replaced,
expired or unknown link is a 400 page; accepted twice at once, it makes one membership."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from app.crud import invitations, organizations
from app.crud.audit import SYSTEM
from app.crud.organizations import Delegate
from app.db import transaction
from app.models.common import utcnow
from app.models.organization import Invitation, InvitationCreate, Membership, OrganizationCreate
from app.models.user import User
from tests.test_authz import create_role
from tests.utils import PASSWORD
from tests.utils.account import events
from tests.utils.account_pages import (
    alerts,
    assert_account_headers,
    follow,
    form_fields,
    is_login_page,
    link,
    post_form,
    signed_in_overview,
)
from tests.utils.mailbox import Mailbox
from tests.utils.oidc import browser, submit_login

pytestmark = pytest.mark.usefixtures("oidc_issuer")

SPENT = (
    "This invitation can no longer be used: it was accepted, withdrawn or replaced by a newer "
    "one, or it has expired. Ask the organization for a new one."
)


@pytest.fixture
def acme(db: Session) -> str:
    transaction(
        organizations.create,
        db,
        body=OrganizationCreate(name="Acme Corp", slug="acme"),
        actor=SYSTEM,
    )
    return "acme"


def invite(db: Session, admin: User, email: str, *role_ids: str, org: str = "acme") -> str:
    """An invitation as an admin sends it; the token its mail carries."""
    body = InvitationCreate(email=email, roles=list(role_ids))
    sent = transaction(
        invitations.invite,
        db,
        ref=org,
        body=body,
        delegate=Delegate(user_id=admin.id, admin=True),
        actor=SYSTEM,
    )
    return sent.token


def members(db: Session, user: User) -> list[Membership]:
    db.expire_all()
    return list(db.exec(select(Membership).where(col(Membership.user_id) == user.id)).all())


def page_of(token: str) -> str:
    return f"/account/invitation?token={quote(token)}"


def test_a_browser_not_signed_in_is_offered_sign_in_or_sign_up_and_comes_back(
    client: TestClient,
    db: Session,
    admin: User,
    admin_headers: dict[str, str],
    acme: str,
    user_factory: Callable[..., User],
) -> None:
    reader = create_role(client, admin_headers, "reader")
    invitee = user_factory(email="ivy@example.com", is_verified=True)
    token = invite(db, admin, invitee.email, reader["id"])
    b = browser(client)
    shown = b.get(page_of(token))
    assert shown.status_code == 200
    assert_account_headers(shown)
    assert "Join Acme Corp" in shown.text and "ivy@example.com" in shown.text
    assert "reader" in shown.text
    assert 'action="/account/invitation"' not in shown.text  # no Accept before signing in
    assert b.get(page_of(token)).status_code == 200  # a GET spends nothing
    assert len(db.exec(select(Invitation)).all()) == 1
    here = page_of(token)
    assert link(shown, "Sign in") == f"/account/login?next={quote(here, safe='')}"
    assert link(shown, "Create account") == f"/account/sign-up?next={quote(here, safe='')}"

    login = b.get(link(shown, "Sign in") or "")
    assert is_login_page(login) and form_fields(login.text)["next"] == here
    back = submit_login(b, login, invitee.email, PASSWORD)
    assert back.status_code == 303 and back.headers["location"] == here
    offered = b.get(here)
    assert offered.status_code == 200 and 'action="/account/invitation"' in offered.text
    assert form_fields(offered.text)["token"] == token

    joined = post_form(b, offered, "/account/invitation")
    assert joined.status_code == 200
    assert "You have joined Acme Corp" in joined.text and "reader" in joined.text
    [membership] = members(db, invitee)
    assert [e.subject_id for e in events("org.invitation_accepted")] == [invitee.id]
    assert membership.user_id == invitee.id

    spent = b.get(here)
    assert spent.status_code == 400 and alerts(spent) == [SPENT]
    again = post_form(b, offered, "/account/invitation")
    assert again.status_code == 400 and len(members(db, invitee)) == 1


def test_someone_else_signed_in_is_told_and_may_switch_accounts(
    client: TestClient, db: Session, admin: User, acme: str, user_factory: Callable[..., User]
) -> None:
    invitee = user_factory(email="ivy@example.com", is_verified=True)
    other = user_factory(email="oscar@example.com", is_verified=True)
    token = invite(db, admin, invitee.email)
    b = browser(client)
    signed_in_overview(b, other.email)
    shown = b.get(page_of(token))
    assert shown.status_code == 403
    assert alerts(shown) == [
        "This invitation is for ivy@example.com, but you are signed in as oscar@example.com."
    ]
    assert 'action="/account/invitation"' not in shown.text
    # the Accept posted anyway (an old page, a forged form of this browser): 403, nothing spent
    forced = b.post(
        "/account/invitation",
        data={"csrf_token": form_fields(shown.text)["csrf_token"], "token": token},
    )
    assert forced.status_code == 403 and members(db, other) == []
    assert len(db.exec(select(Invitation)).all()) == 1

    switch = link(shown, "Sign in with another account")
    assert switch is not None and "prompt=login" in switch
    login = b.get(switch)
    assert is_login_page(login)  # though a session is live
    back = submit_login(b, login, invitee.email, PASSWORD)
    assert back.headers["location"] == page_of(token)
    offered = b.get(page_of(token))
    assert post_form(b, offered, "/account/invitation").status_code == 200
    assert len(members(db, invitee)) == 1 and members(db, other) == []


def test_an_unverified_address_is_asked_to_confirm_first(
    client: TestClient, db: Session, admin: User, acme: str, user_factory: Callable[..., User]
) -> None:
    invitee = user_factory(email="ivy@example.com", is_verified=False)
    token = invite(db, admin, invitee.email)
    b = browser(client)
    signed_in_overview(b, invitee.email)
    shown = b.get(page_of(token))
    assert shown.status_code == 403
    assert alerts(shown) == [
        "Confirm your address ivy@example.com first: open the link we mailed to it, then open "
        "this invitation again."
    ]
    forced = b.post(
        "/account/invitation",
        data={"csrf_token": form_fields(shown.text)["csrf_token"], "token": token},
    )
    assert forced.status_code == 403 and members(db, invitee) == []
    db.exec(update(User).where(col(User.id) == invitee.id).values(is_verified=True))
    db.commit()
    offered = b.get(page_of(token))
    assert post_form(b, offered, "/account/invitation").status_code == 200


def test_signing_up_from_the_invitation_comes_back_to_it(
    client: TestClient, db: Session, admin: User, acme: str, mailbox: Mailbox
) -> None:
    token = invite(db, admin, "newcomer@example.com")
    b = browser(client)
    shown = b.get(page_of(token))
    sign_up = b.get(link(shown, "Create account") or "")
    assert sign_up.status_code == 200 and form_fields(sign_up.text)["next"] == page_of(token)
    created = post_form(
        b, sign_up, "/account/sign-up", email="newcomer@example.com", password=PASSWORD
    )
    assert created.status_code == 303 and created.headers["location"] == page_of(token)
    back = follow(b, created)
    assert back.status_code == 403  # the new address is not verified yet
    assert "Confirm your address newcomer@example.com first" in alerts(back)[0]


def test_spent_revoked_replaced_expired_or_unknown_links_are_a_400_page(
    client: TestClient, db: Session, admin: User, acme: str, user_factory: Callable[..., User]
) -> None:
    invitee = user_factory(email="ivy@example.com", is_verified=True)
    replaced = invite(db, admin, invitee.email)
    current = invite(db, admin, invitee.email)
    b = browser(client)
    signed_in_overview(b, invitee.email)
    for token in (replaced, "made-up", "", "x" * 300, "x" * 5000):
        answer = b.get("/account/invitation", params={"token": token})
        assert answer.status_code == 400, token[:20]
        assert alerts(answer) == [SPENT]
        assert_account_headers(answer)
    assert b.get("/account/invitation").status_code == 400
    db.exec(update(Invitation).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    assert b.get(page_of(current)).status_code == 400
    expired = b.post(
        "/account/invitation",
        data={"csrf_token": form_fields(b.get("/account").text)["csrf_token"], "token": current},
    )
    assert expired.status_code == 400 and members(db, invitee) == []


def test_accepted_twice_at_once_makes_one_membership(
    client: TestClient, db: Session, admin: User, acme: str, user_factory: Callable[..., User]
) -> None:
    for round_ in range(3):
        invitee = user_factory(email=f"ivy{round_}@example.com", is_verified=True)
        token = invite(db, admin, invitee.email)
        b = browser(client)
        signed_in_overview(b, invitee.email)
        offered = b.get(page_of(token))
        cookies = dict(b.cookies)

        def accept(_: int, offered: httpx.Response = offered, cookies: dict = cookies) -> int:
            # not closed: closing a client closes the shared transport, and with it
            # the other thread's request in flight
            twin = browser(client)
            twin.cookies.update(cookies)
            return post_form(twin, offered, "/account/invitation").status_code

        with ThreadPoolExecutor(max_workers=2) as pool:
            statuses = sorted(pool.map(accept, range(2)))
        assert statuses == [200, 400], statuses
        assert len(members(db, invitee)) == 1
    assert len(events("org.invitation_accepted")) == 3


def test_accepting_needs_this_browsers_csrf_token(
    client: TestClient, db: Session, admin: User, acme: str, user_factory: Callable[..., User]
) -> None:
    invitee = user_factory(email="ivy@example.com", is_verified=True)
    token = invite(db, admin, invitee.email)
    b = browser(client)
    signed_in_overview(b, invitee.email)
    forged = b.post("/account/invitation", data={"csrf_token": "forged", "token": token})
    assert forged.status_code == 403 and members(db, invitee) == []
