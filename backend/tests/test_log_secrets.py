"""No password or token ever reaches a log line: a full run against a real server, at DEBUG."""

from pathlib import Path

import httpx

from tests.utils.mailbox import SmtpServer, token_in
from tests.utils.server import running_server

PASSWORD = "first-secret-password-1"
NEW_PASSWORD = "second-secret-password-2"
EMAIL = "leak-check@example.com"


def test_logs_of_a_full_session_hold_no_password_and_no_token(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    smtp.mailbox.clear()
    log_path = tmp_path / "server.log"
    env = {
        "LOG_LEVEL": "DEBUG",
        "ACCESS_LOG": "true",
        "EMAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_TLS": "false",
        "REFRESH_REUSE_GRACE_SECONDS": "0",  # the reuse below is detected, and logged
    }
    secrets: list[str] = [PASSWORD, NEW_PASSWORD]
    with running_server(env, log_path=log_path) as base:
        api = httpx.Client(base_url=f"{base}/api/v1", timeout=10)
        assert api.post("/auth/register", json={"email": EMAIL, "password": PASSWORD}).is_success
        secrets.append(token_in(smtp.mailbox.last_to(EMAIL), "/account/verify-email"))
        pair = api.post("/auth/login", data={"username": EMAIL, "password": PASSWORD}).json()
        secrets += [pair["access_token"], pair["refresh_token"]]
        bearer = {"Authorization": f"Bearer {pair['access_token']}"}
        assert api.get("/users/me", headers=bearer).status_code == 200
        rotated = api.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()
        secrets += [rotated["access_token"], rotated["refresh_token"]]
        reused = api.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert reused.status_code == 401  # reuse detected: logged as an event, token not in it
        api.post("/auth/login", data={"username": EMAIL, "password": "wrong-" + PASSWORD})

        smtp.mailbox.clear()
        assert api.post("/auth/password-recovery", json={"email": EMAIL}).status_code == 202
        reset_token = token_in(smtp.mailbox.last_to(EMAIL), "/account/reset-password")
        secrets.append(reset_token)
        reset = api.post(
            "/auth/reset-password", json={"token": reset_token, "new_password": NEW_PASSWORD}
        )
        assert reset.status_code == 204
        again = api.post("/auth/reset-password", json={"token": reset_token, "new_password": "x"})
        assert again.status_code in (400, 422)
        final = api.post("/auth/login", data={"username": EMAIL, "password": NEW_PASSWORD}).json()
        secrets += [final["access_token"], final["refresh_token"]]
        api.post("/auth/logout", headers={"Authorization": f"Bearer {final['access_token']}"})

    log = log_path.read_text()
    assert "POST /auth/login" in log or "auth/login" in log  # the run was logged at all
    for secret in secrets:
        assert secret not in log
        assert secret[:24] not in log  # not even a prefix of a token
