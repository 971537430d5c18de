"""Passkeys on the API, with generated ceremonies (tests/utils/webauthn.py) verified by the
service with the `webauthn` package: registration, the list, rename and delete, sign-in with
and without an email, and every refusal (origin, RP ID, replay, clone, deleted passkey)."""

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col

from app.core.config import Settings
from app.db import get_engine
from app.models.common import utcnow
from app.models.session import AuthSession
from app.models.user import User
from tests.test_mfa import code_at, enable_totp
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.account import all_event_text, events
from tests.utils.webauthn import SoftAuthenticator, b64url

MINE = "/users/me/passkeys"


@pytest.fixture(autouse=True)
def no_rate_limit(settings: Callable[..., Settings]) -> None:
    settings(RATE_LIMIT_ENABLED=False)


def creation_options(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(api(f"{MINE}/registration/options"), headers=headers, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


def register(
    client: TestClient, headers: dict[str, str], device: SoftAuthenticator, **body: Any
) -> Any:
    options = creation_options(client, headers, password=PASSWORD)
    credential = device.create(options)
    return client.post(
        api(f"{MINE}/registration"), headers=headers, json={"credential": credential, **body}
    )


def sign_in(
    client: TestClient, device: SoftAuthenticator, email: str | None = None, **get: Any
) -> Any:
    started = client.post(api("/auth/passkey/options"), json={"email": email} if email else {})
    assert started.status_code == 200, started.text
    flow = started.json()
    credential = device.get(flow["options"], **get)
    return client.post(
        api("/auth/passkey/login"), json={"flow_id": flow["flow_id"], "credential": credential}
    )


@pytest.fixture
def device() -> SoftAuthenticator:
    return SoftAuthenticator()


@pytest.fixture
def registered(
    client: TestClient, user: User, user_headers: dict[str, str], device: SoftAuthenticator
) -> dict[str, Any]:
    response = register(client, user_headers, device, name="My laptop")
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_passkey_is_registered_listed_renamed_and_deleted(
    client: TestClient, user_headers: dict[str, str], registered: dict[str, Any]
) -> None:
    assert registered.keys() == {"id", "name", "created_at", "last_used_at", "transports"}
    assert (registered["name"], registered["transports"]) == ("My laptop", ["internal"])
    assert client.get(api(MINE), headers=user_headers).json() == [registered]
    renamed = client.patch(
        api(f"{MINE}/{registered['id']}"), headers=user_headers, json={"name": "Work laptop"}
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Work laptop"
    assert client.delete(api(f"{MINE}/{registered['id']}"), headers=user_headers).status_code == 204
    assert client.get(api(MINE), headers=user_headers).json() == []
    assert events("passkey.registered") and events("passkey.deleted")


def test_a_passkey_without_a_name_is_named_after_its_authenticator(
    client: TestClient, user_headers: dict[str, str], device: SoftAuthenticator
) -> None:
    response = register(client, user_headers, device)
    assert response.status_code == 201 and response.json()["name"] == "Passkey"


def test_options_require_a_resident_key_and_exclude_existing_credentials(
    client: TestClient,
    user_headers: dict[str, str],
    registered: dict[str, Any],
    device: SoftAuthenticator,
) -> None:
    options = creation_options(client, user_headers, password=PASSWORD)
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["rp"]["id"] == "localhost"
    assert [c["id"] for c in options["excludeCredentials"]] == [b64url(device.credential_id)]


def test_the_same_authenticator_cannot_register_twice(
    client: TestClient,
    user_headers: dict[str, str],
    registered: dict[str, Any],
    device: SoftAuthenticator,
) -> None:
    again = register(client, user_headers, device)
    assert again.status_code == 400
    assert len(client.get(api(MINE), headers=user_headers).json()) == 1


def test_registration_needs_the_password_unless_the_login_is_recent(
    client: TestClient, user: User, user_headers: dict[str, str], db: Session
) -> None:
    recent = client.post(api(f"{MINE}/registration/options"), headers=user_headers, json={})
    assert recent.status_code == 200  # the session was opened by a login a moment ago
    wrong = client.post(
        api(f"{MINE}/registration/options"), headers=user_headers, json={"password": "nope-nope"}
    )
    assert wrong.status_code == 400
    db.exec(
        update(AuthSession)
        .where(col(AuthSession.user_id) == user.id)
        .values(created_at=utcnow() - timedelta(minutes=6))
    )
    db.commit()
    stale = client.post(api(f"{MINE}/registration/options"), headers=user_headers, json={})
    assert stale.status_code == 400
    assert "Password required" in stale.json()["detail"]


@pytest.mark.parametrize(
    "tamper",
    [
        {"origin": "https://evil.example"},
        {"rp_id": "evil.example"},
    ],
    ids=["wrong-origin", "wrong-rp-id"],
)
def test_a_registration_for_another_origin_or_rp_id_is_refused_and_stores_nothing(
    client: TestClient,
    user_headers: dict[str, str],
    device: SoftAuthenticator,
    tamper: dict[str, str],
) -> None:
    options = creation_options(client, user_headers, password=PASSWORD)
    credential = device.create(options, **tamper)
    response = client.post(
        api(f"{MINE}/registration"), headers=user_headers, json={"credential": credential}
    )
    assert response.status_code == 400
    assert client.get(api(MINE), headers=user_headers).json() == []


def test_a_registration_challenge_is_single_use_and_bound_to_its_user(
    client: TestClient,
    user_headers: dict[str, str],
    moderator_headers: dict[str, str],
) -> None:
    options = creation_options(client, user_headers, password=PASSWORD)
    first = SoftAuthenticator().create(options)
    stolen = SoftAuthenticator().create(options)  # another user presents this user's challenge
    other = client.post(
        api(f"{MINE}/registration"), headers=moderator_headers, json={"credential": stolen}
    )
    assert other.status_code == 400
    ok = client.post(api(f"{MINE}/registration"), headers=user_headers, json={"credential": first})
    assert ok.status_code == 201
    replay = SoftAuthenticator().create(options)
    again = client.post(
        api(f"{MINE}/registration"), headers=user_headers, json={"credential": replay}
    )
    assert again.status_code == 400


@pytest.mark.parametrize(
    "credential", [{}, {"id": "x", "response": {}}, {"response": {"clientDataJSON": "!!"}}]
)
def test_malformed_credentials_are_4xx(
    client: TestClient, user_headers: dict[str, str], credential: dict[str, Any]
) -> None:
    registration = client.post(
        api(f"{MINE}/registration"), headers=user_headers, json={"credential": credential}
    )
    assert registration.status_code == 400
    flow = client.post(api("/auth/passkey/options"), json={}).json()
    signing_in = client.post(
        api("/auth/passkey/login"), json={"flow_id": flow["flow_id"], "credential": credential}
    )
    assert signing_in.status_code == 401


def test_sign_in_without_an_email_with_a_discoverable_passkey(
    client: TestClient, user: User, registered: dict[str, Any], device: SoftAuthenticator
) -> None:
    flow = client.post(api("/auth/passkey/options"), json={}).json()
    assert flow["options"].get("allowCredentials", []) == []
    credential = device.get(flow["options"])
    response = client.post(
        api("/auth/passkey/login"), json={"flow_id": flow["flow_id"], "credential": credential}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    me = client.get(api("/users/me"), headers=auth_header(response.json()))
    assert me.json()["email"] == user.email
    [event] = events("passkey.login_succeeded")
    assert event.subject_id == user.id
    listed = client.get(api(MINE), headers=auth_header(response.json())).json()
    assert listed[0]["last_used_at"] is not None


@pytest.mark.parametrize(
    "tamper",
    [{"origin": "https://evil.example"}, {"rp_id": "evil.example"}],
    ids=["wrong-origin", "wrong-rp-id"],
)
def test_a_sign_in_for_another_origin_or_rp_id_is_401_and_audited(
    client: TestClient,
    registered: dict[str, Any],
    device: SoftAuthenticator,
    tamper: dict[str, str],
) -> None:
    assert sign_in(client, device, **tamper).status_code == 401
    assert events("passkey.login_failed")


def test_a_sign_in_challenge_is_single_use_and_bound_to_its_flow(
    client: TestClient, registered: dict[str, Any], device: SoftAuthenticator
) -> None:
    flow = client.post(api("/auth/passkey/options"), json={}).json()
    other_flow = client.post(api("/auth/passkey/options"), json={}).json()
    credential = device.get(flow["options"])
    wrong_flow = {"flow_id": other_flow["flow_id"], "credential": credential}
    assert client.post(api("/auth/passkey/login"), json=wrong_flow).status_code == 401
    body = {"flow_id": flow["flow_id"], "credential": credential}
    assert client.post(api("/auth/passkey/login"), json=body).status_code == 200
    replayed = {"flow_id": flow["flow_id"], "credential": device.get(flow["options"])}
    assert client.post(api("/auth/passkey/login"), json=replayed).status_code == 401


def test_a_cloned_passkey_with_a_lower_sign_count_is_refused_and_audited(
    client: TestClient, registered: dict[str, Any], device: SoftAuthenticator
) -> None:
    assert sign_in(client, device, sign_count=5).status_code == 200
    clone = copy.deepcopy(device)
    assert sign_in(client, clone, sign_count=3).status_code == 401
    assert sign_in(client, clone, sign_count=5).status_code == 401  # not greater: refused too
    [suspected, _] = events("passkey.clone_suspected")
    assert suspected.detail["passkey_id"] == registered["id"]
    assert sign_in(client, device, sign_count=6).status_code == 200


def test_a_deleted_passkey_no_longer_signs_in(
    client: TestClient,
    user_headers: dict[str, str],
    registered: dict[str, Any],
    device: SoftAuthenticator,
) -> None:
    client.delete(api(f"{MINE}/{registered['id']}"), headers=user_headers)
    assert sign_in(client, device).status_code == 401


def test_another_users_passkey_is_404(
    client: TestClient, moderator_headers: dict[str, str], registered: dict[str, Any]
) -> None:
    path = api(f"{MINE}/{registered['id']}")
    assert client.patch(path, headers=moderator_headers, json={"name": "mine"}).status_code == 404
    assert client.delete(path, headers=moderator_headers).status_code == 404


def test_a_passkey_with_user_verification_satisfies_mfa_and_one_without_does_not(
    client: TestClient,
    user: User,
    user_headers: dict[str, str],
    registered: dict[str, Any],
    device: SoftAuthenticator,
) -> None:
    setup = client.post(
        api("/users/me/mfa/totp"), headers=user_headers, json={"password": PASSWORD}
    )
    code = pyotp.TOTP(setup.json()["secret"]).now()
    client.post(api("/users/me/mfa/totp/confirm"), headers=user_headers, json={"code": code})
    assert "access_token" in sign_in(client, device).json()
    device.user_verification = False
    one_factor = sign_in(client, device)
    assert one_factor.status_code == 200 and one_factor.json()["mfa_required"] is True


def test_failures_with_a_known_passkey_count_toward_its_accounts_lockout(
    client: TestClient,
    user: User,
    registered: dict[str, Any],
    device: SoftAuthenticator,
    settings: Callable[..., Settings],
) -> None:
    settings(MAX_FAILED_LOGINS=2)
    for _ in range(2):
        assert sign_in(client, device, origin="https://evil.example").status_code == 401
    assert sign_in(client, device).status_code == 429
    with pytest.raises(AssertionError):  # and the password login from this address too
        login(client, user.email)
    assert "signature" not in all_event_text()


def test_an_inactive_users_passkey_is_403(
    client: TestClient, user: User, registered: dict[str, Any], device: SoftAuthenticator
) -> None:
    with Session(get_engine()) as session:
        session.exec(update(User).where(col(User.id) == user.id).values(is_active=False))
        session.commit()
    assert sign_in(client, device).status_code == 403


def test_the_totp_step_after_a_passkey_without_uv_signs_in_until_the_password_changes(
    client: TestClient,
    user: User,
    user_headers: dict[str, str],
    registered: dict[str, Any],
    device: SoftAuthenticator,
) -> None:
    """The API path: /auth/passkey/login (no UV), then /auth/login/mfa with a code; a
    password change in between spends the challenge, as it does after a password."""
    secret, _ = enable_totp(client, user_headers)
    device.user_verification = False
    spent = sign_in(client, device).json()["mfa_token"]
    mfa_token = sign_in(client, device).json()["mfa_token"]
    answer = client.post(
        api("/auth/login/mfa"), json={"mfa_token": mfa_token, "code": code_at(secret, 1)}
    )
    assert answer.status_code == 200 and "access_token" in answer.json(), answer.text
    me = client.get(api("/users/me"), headers=auth_header(answer.json()))
    assert me.status_code == 200 and me.json()["email"] == user.email

    changed = client.post(
        api("/users/me/password"),
        headers=user_headers,
        json={"current_password": PASSWORD, "new_password": "a-brand-new-password"},
    )
    assert changed.status_code == 204
    refused = client.post(
        api("/auth/login/mfa"), json={"mfa_token": spent, "code": code_at(secret, 2)}
    )
    assert refused.status_code == 401
