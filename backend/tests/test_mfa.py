"""TOTP over HTTP: set-up, confirmation, the two-step login, recovery codes, turning it off.

Codes are computed with pyotp for the current and the next 30-second step, so nothing waits.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from app.auth.mfa import MAX_MFA_ATTEMPTS
from app.core import crypto
from app.core.config import Settings
from app.db import get_engine
from app.models.action_token import RecoveryCode, TokenPurpose
from app.models.user import User
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.account import all_event_text, events, expire_tokens, fresh_user

SETUP = "/users/me/mfa/totp"
CONFIRM = "/users/me/mfa/totp/confirm"


def code_at(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def enable_totp(client: TestClient, headers: dict[str, str]) -> tuple[str, list[str]]:
    secret = client.post(api(SETUP), headers=headers, json={"password": PASSWORD}).json()["secret"]
    response = client.post(api(CONFIRM), headers=headers, json={"code": code_at(secret)})
    assert response.status_code == 200, response.text
    return secret, response.json()["recovery_codes"]


def password_step(client: TestClient, email: str) -> str:
    response = client.post(api("/auth/login"), data={"username": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.keys() == {"mfa_required", "mfa_token"}
    assert body["mfa_required"] is True
    return str(body["mfa_token"])


def second_step(client: TestClient, mfa_token: str, code: str) -> Response:
    return client.post(api("/auth/login/mfa"), json={"mfa_token": mfa_token, "code": code})


@pytest.fixture(autouse=True)
def no_rate_limit(settings: Callable[..., Settings]) -> None:
    """These tests log in many times a minute."""
    settings(RATE_LIMIT_ENABLED=False)


@pytest.fixture
def mfa_user(client: TestClient, user: User, user_headers: dict[str, str]) -> dict[str, Any]:
    """`user` with TOTP on: its secret and recovery codes."""
    secret, codes = enable_totp(client, user_headers)
    return {"email": user.email, "secret": secret, "codes": codes, "id": user.id}


def test_setup_is_inactive_until_confirmed(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.post(api(SETUP), headers=user_headers, json={"password": PASSWORD})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    setup = response.json()
    assert setup.keys() == {"secret", "otpauth_uri"}
    assert len(setup["secret"]) == 32
    assert setup["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={setup['secret']}" in setup["otpauth_uri"]

    stored = fresh_user(user.email)
    assert stored.mfa_enabled is False
    assert stored.mfa_secret is not None
    assert setup["secret"] not in stored.mfa_secret
    assert crypto.decrypt(stored.mfa_secret) == setup["secret"]
    assert client.get(api("/users/me"), headers=user_headers).json()["mfa_enabled"] is False
    assert "access_token" in login(client, user.email)  # no second step yet


def test_confirm_refuses_a_wrong_code_and_needs_a_setup(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    early = client.post(api(CONFIRM), headers=user_headers, json={"code": "123456"})
    assert early.status_code == 400
    secret = client.post(api(SETUP), headers=user_headers, json={"password": PASSWORD}).json()[
        "secret"
    ]
    wrong = str((int(code_at(secret)) + 1) % 1_000_000).zfill(6)
    for code in (wrong, "abcdef", code_at(secret, 3)):
        response = client.post(api(CONFIRM), headers=user_headers, json={"code": code})
        assert response.status_code == 400
        assert response.json() == {"detail": "Invalid authentication code"}
    assert client.post(api(CONFIRM), headers=user_headers, json={"code": ""}).status_code == 422


def test_confirm_returns_ten_recovery_codes_stored_hashed(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    secret, codes = enable_totp(client, user_headers)
    assert len(codes) == len(set(codes)) == 10
    assert client.get(api("/users/me"), headers=user_headers).json()["mfa_enabled"] is True
    with Session(get_engine()) as session:
        hashes = session.exec(
            select(RecoveryCode.code_hash).where(col(RecoveryCode.user_id) == user.id)
        ).all()
        session.commit()
    assert len(hashes) == 10
    assert not set(codes) & set(hashes)
    [event] = events("mfa.enabled")
    assert event.subject_id == user.id
    text = all_event_text()
    assert secret not in text
    assert not any(code in text for code in codes)

    assert (
        client.post(api(SETUP), headers=user_headers, json={"password": PASSWORD}).status_code
        == 409
    )
    again = client.post(api(CONFIRM), headers=user_headers, json={"code": code_at(secret, 1)})
    assert again.status_code == 409


def test_login_takes_a_second_step_with_a_totp_code(
    client: TestClient, mfa_user: dict[str, Any]
) -> None:
    mfa_token = password_step(client, mfa_user["email"])
    assert client.get(api("/users/me"), headers=auth_header(mfa_token)).status_code == 401
    assert client.post(api("/auth/refresh"), json={"refresh_token": mfa_token}).status_code == 401

    response = second_step(client, mfa_token, code_at(mfa_user["secret"], 1))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    pair = response.json()
    assert pair["token_type"] == "bearer"
    assert client.get(api("/users/me"), headers=auth_header(pair)).status_code == 200
    assert events("auth.login_succeeded")[-1].detail == {"mfa": "totp"}

    assert second_step(client, mfa_token, code_at(mfa_user["secret"], 1)).status_code == 401


def test_a_totp_code_cannot_be_replayed(client: TestClient, mfa_user: dict[str, Any]) -> None:
    secret = mfa_user["secret"]
    confirmed_with = code_at(secret)
    first = second_step(client, password_step(client, mfa_user["email"]), confirmed_with)
    assert first.status_code == 401  # claimed at the confirmation already

    code = code_at(secret, 1)
    assert second_step(client, password_step(client, mfa_user["email"]), code).status_code == 200
    again = second_step(client, password_step(client, mfa_user["email"]), code)
    assert again.status_code == 401
    assert again.json() == {"detail": "Invalid authentication code"}
    assert again.headers["www-authenticate"] == "Bearer"
    older = second_step(client, password_step(client, mfa_user["email"]), code_at(secret, -1))
    assert older.status_code == 401


def test_wrong_codes_use_up_the_mfa_token(
    client: TestClient, mfa_user: dict[str, Any], settings: Callable[..., object]
) -> None:
    settings(MAX_FAILED_LOGINS=100)
    mfa_token = password_step(client, mfa_user["email"])
    right = code_at(mfa_user["secret"], 1)
    wrong = str((int(right) + 1) % 1_000_000).zfill(6)
    for _ in range(MAX_MFA_ATTEMPTS):
        assert second_step(client, mfa_token, wrong).status_code == 401
    assert second_step(client, mfa_token, right).status_code == 401  # spent, even when right
    assert second_step(client, mfa_token, mfa_user["codes"][0]).status_code == 401
    fresh = password_step(client, mfa_user["email"])
    assert second_step(client, fresh, right).status_code == 200


def test_wrong_codes_count_toward_the_lockout(
    client: TestClient, mfa_user: dict[str, Any], settings: Callable[..., object]
) -> None:
    """A right password does not reset the count: only a completed login does."""
    settings(MAX_FAILED_LOGINS=3)
    right = code_at(mfa_user["secret"], 1)
    wrong = str((int(right) + 1) % 1_000_000).zfill(6)
    for _ in range(3):
        assert (
            second_step(client, password_step(client, mfa_user["email"]), wrong).status_code == 401
        )
    locked = client.post(
        api("/auth/login"), data={"username": mfa_user["email"], "password": PASSWORD}
    )
    assert locked.status_code == 429
    assert "retry-after" in locked.headers


def test_a_recovery_code_works_once(client: TestClient, mfa_user: dict[str, Any]) -> None:
    first, second = mfa_user["codes"][:2]
    ok = second_step(client, password_step(client, mfa_user["email"]), first)
    assert ok.status_code == 200
    assert events("auth.login_succeeded")[-1].detail == {"mfa": "recovery_code"}
    spent = second_step(client, password_step(client, mfa_user["email"]), first)
    assert spent.status_code == 401
    typed = f" {second.upper().replace('-', ' ')} "  # as a person may type it
    assert second_step(client, password_step(client, mfa_user["email"]), typed).status_code == 200


def test_expired_or_forged_mfa_token_is_401(client: TestClient, mfa_user: dict[str, Any]) -> None:
    mfa_token = password_step(client, mfa_user["email"])
    expire_tokens(TokenPurpose.MFA_LOGIN)
    assert second_step(client, mfa_token, code_at(mfa_user["secret"], 1)).status_code == 401
    assert second_step(client, "not.a.jwt", code_at(mfa_user["secret"], 1)).status_code == 401
    access = login_access_token_of_another_user(client)
    assert second_step(client, access, code_at(mfa_user["secret"], 1)).status_code == 401


def login_access_token_of_another_user(client: TestClient) -> str:
    client.post(
        api("/auth/register"), json={"email": "other@example.com", "password": "lunar-pebble-41"}
    )
    return str(login(client, "other@example.com", "lunar-pebble-41")["access_token"])


def test_a_deactivated_user_cannot_finish_the_login(
    client: TestClient, mfa_user: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    mfa_token = password_step(client, mfa_user["email"])
    deactivate = {"is_active": False}
    client.patch(api(f"/users/{mfa_user['id']}"), headers=admin_headers, json=deactivate)
    assert second_step(client, mfa_token, code_at(mfa_user["secret"], 1)).status_code == 401


def test_disable_needs_the_password_and_a_code(
    client: TestClient, mfa_user: dict[str, Any], user_headers: dict[str, str]
) -> None:
    code = code_at(mfa_user["secret"], 1)
    wrong = client.request(
        "DELETE",
        api(SETUP),
        headers=user_headers,
        json={"password": "not-my-password", "code": code},
    )
    assert wrong.status_code == 400
    assert wrong.json() == {"detail": "Incorrect password"}
    bad_code = client.request(
        "DELETE", api(SETUP), headers=user_headers, json={"password": PASSWORD, "code": "000000"}
    )
    assert bad_code.status_code == 400
    assert bad_code.json() == {"detail": "Invalid authentication code"}
    only_password = {"password": PASSWORD}
    assert (
        client.request("DELETE", api(SETUP), headers=user_headers, json=only_password).status_code
        == 422
    )
    assert client.request("DELETE", api(SETUP), headers=user_headers).status_code == 422
    assert fresh_user(mfa_user["email"]).mfa_enabled

    done = client.request(
        "DELETE", api(SETUP), headers=user_headers, json={"password": PASSWORD, "code": code}
    )
    assert done.status_code == 204
    stored = fresh_user(mfa_user["email"])
    assert (stored.mfa_enabled, stored.mfa_secret, stored.mfa_last_step) == (False, None, None)
    assert "access_token" in login(client, mfa_user["email"])
    [event] = events("mfa.disabled")
    assert event.subject_id == mfa_user["id"]
    assert PASSWORD not in all_event_text()


def test_disable_takes_a_recovery_code_and_setup_needs_the_password(
    client: TestClient, mfa_user: dict[str, Any], user_headers: dict[str, str]
) -> None:
    body = {"password": PASSWORD, "code": mfa_user["codes"][0]}
    assert client.request("DELETE", api(SETUP), headers=user_headers, json=body).status_code == 204
    # a stolen access token alone cannot enrol a second factor
    assert client.post(api(SETUP), headers=user_headers).status_code == 422
    wrong = client.post(api(SETUP), headers=user_headers, json={"password": "not-my-password"})
    assert wrong.status_code == 400 and wrong.json() == {"detail": "Incorrect password"}
    assert fresh_user(mfa_user["email"]).mfa_secret is None
    started = client.post(api(SETUP), headers=user_headers, json={"password": PASSWORD})
    assert started.status_code == 200


def test_manage_reset_mfa_helps_a_user_who_lost_the_device(
    client: TestClient, mfa_user: dict[str, Any]
) -> None:
    from manage import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["reset-mfa", mfa_user["email"]])
    assert result.exit_code == 0, result.output
    assert "TOTP is off" in result.output
    assert "access_token" in login(client, mfa_user["email"])
    assert events("mfa.disabled")[0].detail == {}

    again = runner.invoke(cli, ["reset-mfa", mfa_user["email"]])
    assert again.exit_code == 0
    assert "nothing to do" in again.output
    unknown = runner.invoke(cli, ["reset-mfa", "ghost@example.com"])
    assert unknown.exit_code == 1


def test_a_seed_encrypted_under_another_key_cannot_be_read() -> None:
    assert crypto.decrypt("gAAAAAnot-a-fernet-token") is None
    assert crypto.decrypt(crypto.encrypt("JBSWY3DPEHPK3PXP")) == "JBSWY3DPEHPK3PXP"


def test_one_code_sent_twice_at_once_logs_in_once(
    client: TestClient, mfa_user: dict[str, Any]
) -> None:
    tokens = [password_step(client, mfa_user["email"]) for _ in range(4)]
    code = code_at(mfa_user["secret"], 1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(lambda t: second_step(client, t, code).status_code, tokens))
    assert statuses == [200, 401, 401, 401]
