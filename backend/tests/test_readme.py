"""The README's curl flows, run as written against a real server."""

import json
import re
import subprocess
from pathlib import Path

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
