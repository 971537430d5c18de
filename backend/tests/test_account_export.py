"""/account/export: a JSON download of everything the service holds about the person
(profile, roles, organizations, invitations, sessions, consents, passkeys' metadata, mailed
links, audit events), and no secret at all: the test gives the account one of everything,
then looks in the download for every hash, secret, token and digest the database holds."""

import base64
import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.models.action_token import ActionToken, RecoveryCode
from app.models.organization import Invitation
from app.models.passkey import Passkey
from app.models.session import AuthSession
from app.models.user import User
from tests.test_authz import add_member, create_role
from tests.test_mfa import code_at, enable_totp
from tests.test_passkeys import register as register_passkey
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.account import events, fresh_user
from tests.utils.account_manage import consented_app
from tests.utils.account_pages import assert_account_headers, post_form, signed_in_overview
from tests.utils.mailbox import Mailbox
from tests.utils.oidc import ISSUER, browser, submit_login
from tests.utils.webauthn import SoftAuthenticator

pytestmark = pytest.mark.usefixtures("oidc_issuer")


@pytest.fixture(autouse=True)
def no_rate_limit(settings: Callable[..., Settings]) -> None:
    settings(RATE_LIMIT_ENABLED=False)


def test_the_export_is_a_json_download_of_the_persons_data(
    client: TestClient,
    db: Session,
    user: User,
    admin_headers: dict[str, str],
    mailbox: Mailbox,
) -> None:
    user.full_name = "Ada Lovelace"
    db.add(user)
    db.commit()
    reader = create_role(client, admin_headers, "reader")
    client.put(
        api(f"/users/{user.id}/roles"), json={"roles": [reader["id"]]}, headers=admin_headers
    )
    acme = add_member(db, user, [reader["id"]], slug="acme")
    add_member(db, user, [], slug="globex")
    invited = client.post(
        api("/organizations/globex/invitations"),
        json={"email": user.email, "roles": []},
        headers=admin_headers,
    )
    assert invited.status_code == 201
    consented_app(client, db, user, name="Photo Printer")
    b = browser(client)
    b.headers["User-Agent"] = "Firefox/130"
    signed_in_overview(b, user.email)

    answer = b.get("/account/export")
    assert answer.status_code == 200
    assert_account_headers(answer)
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-disposition"] == 'attachment; filename="account-export.json"'
    data = answer.json()
    assert data["format"] == "account-export/1"
    profile = data["profile"]
    assert profile["id"] == str(user.id) and profile["email"] == user.email
    assert profile["full_name"] == "Ada Lovelace" and profile["role"] == "user"
    assert [role["name"] for role in data["roles"]] == ["reader"]
    assert {(o["slug"], tuple(r["name"] for r in o["roles"])) for o in data["organizations"]} == {
        ("acme", ("reader",)),
        ("globex", ()),
    }
    assert [i["organization"]["slug"] for i in data["invitations"]] == ["globex"]
    assert sorted(s["kind"] for s in data["sessions"]) == ["browser", "browser", "oauth"]
    oauth = [s for s in data["sessions"] if s["kind"] == "oauth"]
    assert oauth[0]["client_name"] == "Photo Printer"
    assert any(s["user_agent"] == "Firefox/130" for s in data["sessions"])
    assert [c["client_name"] for c in data["consents"]] == ["Photo Printer"]
    events_seen = {e["event"] for e in data["audit_events"]}
    assert {"auth.login_succeeded", "oauth.consent_granted", "authz.roles_assigned"} <= events_seen
    # the admin's own address and browser are theirs: not in this person's export
    by_admin = [e for e in data["audit_events"] if e["event"] == "authz.roles_assigned"]
    assert by_admin and all("ip" not in e and "user_agent" not in e for e in by_admin)
    assert str(acme.id) in answer.text
    [exported] = events("user.exported")
    assert exported.subject_id == user.id and exported.actor_id == user.id


def test_the_export_holds_no_hash_secret_token_or_digest(
    client: TestClient,
    db: Session,
    user: User,
    admin_headers: dict[str, str],
    mailbox: Mailbox,
) -> None:
    app = consented_app(client, db, user, name="Photo Printer")
    api_tokens = login(client, user.email)
    headers = auth_header(api_tokens)
    totp_secret, recovery_codes = enable_totp(client, headers)
    device = SoftAuthenticator(origin=ISSUER, rp_id="testserver")
    assert register_passkey(client, headers, device, name="Laptop").status_code == 201
    client.post(api("/organizations"), json={"name": "Acme", "slug": "acme"}, headers=admin_headers)
    client.post(
        api("/organizations/acme/invitations"), json={"email": user.email}, headers=admin_headers
    )
    mailbox.wait(1)
    invitation_token = mailbox.token_for(user.email, "/account/invitation")
    client.post(api("/auth/password-recovery"), json={"email": user.email})
    mailbox.wait(2)
    reset_token = mailbox.token_for(user.email, "/account/reset-password")

    b = browser(client)
    login_page = b.get("/account/login", params={"next": "/account"})
    second = submit_login(b, login_page, user.email, PASSWORD)
    post_form(b, second, "/oauth/authorize/mfa", code=code_at(totp_secret, 1))
    exported = b.get("/account/export")
    assert exported.status_code == 200, exported.text
    text = exported.text
    assert json.loads(text)["profile"]["mfa_enabled"] is True
    assert json.loads(text)["passkeys"][0]["name"] == "Laptop"

    db.expire_all()
    row = fresh_user(user.email)
    secrets: dict[str, str] = {
        "password": PASSWORD,
        "password hash": row.hashed_password,
        "encrypted TOTP secret": str(row.mfa_secret),
        "TOTP secret": totp_secret,
        "reset token": reset_token,
        "invitation token": invitation_token,
        "API access token": api_tokens["access_token"],
        "API refresh token": api_tokens["refresh_token"],
        "OAuth access token": app.tokens["access_token"],
        "OAuth refresh token": app.tokens["refresh_token"],
        "OAuth ID token": app.tokens["id_token"],
        "client secret": str(app.registered.client_secret),
    }
    for index, code in enumerate(recovery_codes):
        secrets[f"recovery code {index}"] = code
        secrets[f"recovery code {index} (compact)"] = code.replace("-", "")
    for cookie_name, cookie_value in b.cookies.items():
        secrets[f"cookie {cookie_name}"] = cookie_value
        secrets[f"cookie {cookie_name} secret"] = cookie_value.rpartition(".")[2]
    for stored in db.exec(select(RecoveryCode).where(col(RecoveryCode.user_id) == user.id)):
        secrets[f"recovery digest {stored.id}"] = stored.code_hash
    for session_row in db.exec(select(AuthSession).where(col(AuthSession.user_id) == user.id)):
        secrets[f"refresh jti {session_row.id}"] = session_row.refresh_jti
        if session_row.previous_jti:
            secrets[f"previous jti {session_row.id}"] = session_row.previous_jti
    for token_row in db.exec(select(ActionToken).where(col(ActionToken.user_id) == user.id)):
        secrets[f"link digest {token_row.id}"] = token_row.token_hash
    for invitation in db.exec(select(Invitation)):
        secrets[f"invitation digest {invitation.id}"] = invitation.token_digest
    for key in db.exec(select(Passkey).where(col(Passkey.user_id) == user.id)):
        secrets["passkey credential id"] = key.credential_id
        secrets["passkey public key (hex)"] = key.public_key.hex()
        secrets["passkey public key (base64)"] = base64.b64encode(key.public_key).decode()
        secrets["passkey public key (base64url)"] = (
            base64.urlsafe_b64encode(key.public_key).decode().rstrip("=")
        )
    assert len(secrets) > 30
    found = {name for name, value in secrets.items() if value and value in text}
    assert found == set()
    for word in ("hashed_password", "mfa_secret", "refresh_jti", "token_hash", "code_hash"):
        assert word not in text


def test_without_a_session_the_export_asks_for_the_login(client: TestClient) -> None:
    answer = browser(client).get("/account/export")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account/login?next=%2Faccount%2Fexport"
