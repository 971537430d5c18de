"""The README's curl flows, run as written against a real server."""

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pyotp

from tests.utils.server import running_server

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def shell_blocks(section: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_readme_starts_with_the_two_commands() -> None:
    lines = README.read_text().splitlines()[:15]
    commands = [line for line in lines if line.startswith("python3 -m venv")]
    assert len(commands) == 2
    assert commands[0].endswith("manage serve")
    assert commands[1].endswith("pytest")


def test_authentication_flow_curl_commands_work_verbatim() -> None:
    blocks = shell_blocks(readme_section("Authentication flow"))
    assert len(blocks) == 5  # register, login, authenticated request, refresh, logout
    with running_server() as base:
        script = "set -eu\n" + "\necho '<<step>>'\n".join(blocks)
        script = script.replace("http://localhost:8000", base)
        result = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
    assert result.returncode == 0, result.stderr
    register, login, me, refresh, logout = result.stdout.split("<<step>>")
    assert json.loads(register)["email"] == "user@example.com"
    assert login.strip() == ""  # the tokens went into variables
    assert json.loads(me)["email"] == "user@example.com"
    assert refresh.strip() == ""
    assert logout.strip() == "401"


class Shell:
    """One bash process fed one README block at a time, so variables carry over."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.process = subprocess.Popen(
            ["bash"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def run(self, block: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        script = block.replace("http://localhost:8000", self.base)
        self.process.stdin.write(script + "\nprintf '\\n__END__%s\\n' $?\n")
        self.process.stdin.flush()
        lines = []
        while not (line := self.process.stdout.readline()).startswith("__END__"):
            assert line, "bash ended"
            lines.append(line)
        assert line.strip() == "__END__0", (block, lines)
        return "".join(lines).strip()

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def test_account_curl_commands_work_in_order_after_the_authentication_flow(
    tmp_path: Path,
) -> None:
    """The Account section's blocks, as written, in order, after the Authentication flow;
    only the placeholders for what a mail or the authenticator app gives are filled in."""
    log = tmp_path / "server.log"
    used: set[str] = set()
    secret, recovery, mfa_token, steps = "", "", "", 0

    def mailed_token(path: str) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = re.findall(rf"{path}\?token=([\w-]+)", log.read_text())
            if found and found[-1] not in used:
                used.add(found[-1])
                return str(found[-1])
            time.sleep(0.05)
        raise AssertionError(f"no new {path} link in the log")

    with running_server({"LOG_LEVEL": "INFO", "EMAIL_BACKEND": "console"}, log_path=log) as base:
        shell = Shell(base)
        try:
            for block in shell_blocks(readme_section("Authentication flow")):
                shell.run(block)
            outputs = []
            for block in shell_blocks(
                readme_section("Account: mail, password recovery, verification, sessions, MFA")
            ):
                if "<token from the link>" in block:
                    path = "/reset-password" if "reset-password" in block else "/verify-email"
                    block = block.replace("<token from the link>", mailed_token(path))
                if "<session id>" in block:  # another session of the user: the "lost phone"
                    phone = httpx.post(
                        f"{base}/api/v1/auth/login",
                        data={"username": "user@example.com", "password": "a-new-password-123"},
                    ).json()["access_token"]
                    listed = httpx.get(
                        f"{base}/api/v1/users/me/sessions",
                        headers={"Authorization": f"Bearer {phone}"},
                    ).json()
                    phone_id = next(s["id"] for s in listed if s["current"])
                    block = block.replace("<session id>", phone_id)
                if "<code from the app>" in block:
                    code = pyotp.TOTP(secret).at(time.time() + 30 * steps)
                    steps += 1  # a code, once used, is not accepted again: the next step's
                    block = block.replace("<code from the app>", code)
                block = block.replace("<mfa_token>", mfa_token).replace("<recovery code>", recovery)
                output = shell.run(block)
                outputs.append(output)
                if '"secret"' in output:
                    secret = json.loads(output)["secret"]
                if '"recovery_codes"' in output:
                    recovery = json.loads(output)["recovery_codes"][0]
                if '"mfa_token"' in output:
                    mfa_token = json.loads(output)["mfa_token"]
        finally:
            shell.close()
    (
        _login,
        verified,
        _request,
        changed,
        sessions,
        ended,
        setup,
        confirmed,
        password_step,
        second_step,
        disabled,
        recovery_requested,
        reset,
        email_change,
        email_moved,
    ) = outputs
    assert json.loads(verified)["is_verified"] is True
    assert changed == "" and ended == "" and disabled == "" and reset == ""
    assert [s["current"] for s in json.loads(sessions)] == [True]
    assert setup and len(json.loads(confirmed)["recovery_codes"]) == 10
    assert json.loads(password_step)["mfa_required"] is True
    assert "access_token" in json.loads(second_step)
    assert "message" in json.loads(recovery_requested)
    assert json.loads(email_change)["pending_email"] == "john@example.org"
    moved = json.loads(email_moved)
    assert (moved["email"], moved["is_verified"], moved["pending_email"]) == (
        "john@example.org",
        True,
        None,
    )
