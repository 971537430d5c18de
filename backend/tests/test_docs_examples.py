"""Every example of the README and of docs/, run as written, in order, against a real server.

The README first, then the pages in the order of mkdocs.yml's nav. Each fenced block is one
of: an example this test runs (```sh in bash, one bash per page so variables carry over
within a page; ```python in the project's Python, one interpreter per page; ```js checked by
`node --check`), a block listed in NOT_RUN with the reason, or not an example at all (```text,
```json and ```console-output hold outputs and answers, and are not run). A block of any
other language, or a runnable one that nothing here runs, fails the test.

Only the placeholders are filled in, from what earlier steps printed: a client's id and
secret from `manage client create`, the tokens a mail or an authenticator app would give.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyotp
import pytest

from tests.utils.server import free_port, running_server

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's own bin/
RUN = {"sh", "python", "js"}
NOT_EXAMPLES = {"text", "json", "console-output"}

# Blocks not run here, by page and the start of their first line, each with the reason.
NOT_RUN = {
    ("README.md", "python3 -m venv .venv && .venv/bin/pip install -q -e . &&"):
        "serves until stopped: the test's own `manage serve` stands in for it",
    ("README.md", "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'"):
        ".ci/run runs this line, found by grep, as its first step",
    ("getting-started.md", "python3 -m venv .venv && .venv/bin/pip install -q -e . &&"):
        "the README's first command, which the test's server stands in for",
    ("getting-started.md", "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'"):
        "the README's test command, run by .ci/run",
    ("database.md", "sudo -u postgres psql -c"):
        "makes a role and a database on the machine's server: the test's database stands in",
    ("database.md", ".venv/bin/manage migrate                                   # upgrade"):
        "writes a migration file, downgrades: tests/test_migrations.py upgrades, autogenerates",
    ("operations.md", "export ENVIRONMENT=production"):
        "two production hosts: tests/test_scale_out.py runs two instances on one database",
    ("operations.md", ".venv/bin/python bench/soak.py "):
        "a minute of load on PostgreSQL: `pytest -m soak` (in .ci/run) runs it for 10 s",
    ("operations.md", "cp .env.example .env"):
        "builds and runs containers: needs Docker",
    ("testing.md", ".venv/bin/pytest                                   # SQLite"):
        "the suite itself: .ci/run runs it",
    ("testing.md", ".ci/browser "):
        ".ci/run runs the browser tests",
    ("testing.md", "export TEST_DATABASE_URL="):
        "the suite's own files: .ci/run runs them on PostgreSQL and Redis",
    ("oidc.md", ".venv/bin/pybabel extract -F babel.cfg"):
        "rewrites the committed catalogs: tests/test_i18n.py holds them against the extraction",
    ("performance.md", ".venv/bin/python bench/run.py "):
        "minutes of load with wrk: bench/README.md holds its figures",
}  # fmt: skip


def not_run(block: "Block") -> str | None:
    first = block.text.splitlines()[0]
    return next(
        (
            why
            for (page, start), why in NOT_RUN.items()
            if block.page == page and first.startswith(start)
        ),
        None,
    )


@dataclass
class Block:
    page: str
    line: int
    lang: str
    text: str

    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    nav = re.findall(r"^\s*- .+: ([\w-]+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.M)
    return [ROOT / "README.md", *(ROOT / "docs" / name for name in nav)]


def blocks(path: Path) -> list[Block]:
    found, lines = [], path.read_text().splitlines()
    index = 0
    while index < len(lines):
        if (match := re.match(r"^(\s*)```(.*)$", lines[index])) is not None:
            indent, lang = match.groups()
            end = index + 1
            while lines[end].strip() != "```":
                end += 1
            body = "\n".join(line.removeprefix(indent) for line in lines[index + 1 : end])
            found.append(Block(path.name, index + 1, lang.strip(), body + "\n"))
            index = end
        index += 1
    return found


def all_blocks() -> list[Block]:
    return [block for path in pages() for block in blocks(path)]


def test_every_page_is_in_the_nav_and_the_readme_is_short() -> None:
    listed = {path.name for path in pages()}
    assert {path.name for path in (ROOT / "docs").glob("*.md")} <= listed
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 250
    commands = [line for line in lines[:15] if line.startswith("python3 -m venv")]
    assert len(commands) == 2
    assert commands[0].endswith("manage serve")
    assert commands[1].endswith("pytest")


def test_every_block_is_an_example_run_here_or_says_what_it_is() -> None:
    every = all_blocks()
    for block in every:
        assert block.lang in RUN | NOT_EXAMPLES, (
            f"{block.where()}: ```{block.lang}: tag it sh, python or js (run by this test) or "
            "text, json, console-output (not run)"
        )
    for page, start in NOT_RUN:
        matching = [b for b in every if b.page == page and b.text.startswith(start)]
        assert len(matching) == 1, f"NOT_RUN's {page} {start!r} matches {len(matching)} blocks"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_js_examples_parse() -> None:
    js = [block for block in all_blocks() if block.lang == "js"]
    assert js
    with tempfile.TemporaryDirectory() as scratch:
        for block in js:
            module = Path(scratch) / f"{block.page}-{block.line}.mjs"
            module.write_text(block.text)
            checked = subprocess.run(
                ["node", "--check", str(module)], capture_output=True, text=True, check=False
            )
            assert checked.returncode == 0, (block.where(), checked.stderr)


class Bash:
    """One bash for a page: each block is sourced with `set -e`, stdin from /dev/null."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by close())
        self.process = subprocess.Popen(
            ["bash", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )

    def export(self, name: str, value: str) -> None:
        self.run(f"export {name}='{value}'\n", "export")

    def run(self, script: str, where: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        block = self.cwd / ".block.sh"
        block.write_text(script)
        self.process.stdin.write(
            f"set -e; source {block} </dev/null; set +e; printf '\\n__END__\\n'\n"
        )
        self.process.stdin.flush()
        lines = []
        while not (line := self.process.stdout.readline()).startswith("__END__"):
            if not line:
                self.stderr.seek(0)
                raise AssertionError(f"{where} failed:\n{''.join(lines)}\n{self.stderr.read()}")
            lines.append(line)
        return "".join(lines).strip()

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self.stderr.close()


PYTHON_RUNNER = """
import contextlib, io, sys, traceback
namespace = {"__name__": "__main__"}
for path in sys.stdin:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(open(path.strip()).read(), path.strip(), "exec"), namespace)
        status = 0
    except BaseException:
        out.write(traceback.format_exc())
        status = 1
    sys.stdout.write(out.getvalue() + "\\n__END__%d\\n" % status)
    sys.stdout.flush()
"""


class Python:
    """One interpreter of the project's venv for a page: its blocks share one namespace."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.process = subprocess.Popen(
            [str(VENV_BIN / "python"), "-c", PYTHON_RUNNER],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.count = 0

    def run(self, source: str, where: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.count += 1
        path = self.cwd / f".block{self.count}.py"
        path.write_text(source)
        self.process.stdin.write(f"{path}\n")
        self.process.stdin.flush()
        lines = []
        while not (line := self.process.stdout.readline()).startswith("__END__"):
            assert line, f"{where}: python ended"
            lines.append(line)
        assert line.strip() == "__END__0", f"{where} failed:\n{''.join(lines)}"
        return "".join(lines).strip()

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


@dataclass
class Facts:
    """What earlier steps printed, for the placeholders of later ones."""

    clients: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> id, secret
    token: str = ""  # the last OAuth access token a block printed
    used_links: set[str] = field(default_factory=set)
    totp_secret: str = ""
    totp_steps: int = 0
    recovery_code: str = ""
    mfa_token: str = ""


def json_answers(output: str) -> list[object]:
    """The JSON values printed, including several on one line (curl adds no newline)."""
    answers, decoder, index = [], json.JSONDecoder(), 0
    while (index := next((i for i in range(index, len(output)) if output[i] in "{["), -1)) >= 0:
        try:
            answer, index = decoder.raw_decode(output, index)
            answers.append(answer)
        except ValueError:
            index += 1
    return answers


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="docs-examples-") as scratch:
        path = Path(scratch)
        (path / ".venv").symlink_to(VENV_BIN.parent)
        yield path


CLIENT_VARIABLES = {"Nightly job": "CLIENT", "Orders API": "API_CLIENT"}  # as the prose says
PYTHON_CLIENTS = {  # page -> placeholder prefix -> the client registered earlier on the page
    "oidc.md": {"": "Dashboard"},
    "resource-servers.md": {"": "Nightly job", "api ": "Orders API"},
}
SEED_TOKEN = {"signing-keys.md"}  # "Here `token` is an OAuth access token"
EXAMPLE_DATABASE = "postgresql://auth:auth@localhost:5432/auth"


class Examples:
    """Runs the blocks of every page in order, filling placeholders from earlier outputs."""

    def __init__(self, base: str, workdir: Path, log: Path) -> None:
        self.base, self.workdir, self.log = base, workdir, log
        self.env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
        self.facts = Facts()
        self.outputs: dict[str, list[str]] = {}

    def run_page(self, page: str, page_blocks: list[Block]) -> None:
        bash, python = Bash(self.workdir, self.env), Python(self.workdir, self.env)
        outputs = self.outputs.setdefault(page, [])
        try:
            if page in SEED_TOKEN:
                python.run(f"token = {self.facts.token!r}", "seed")
            for block in page_blocks:
                if block.lang not in {"sh", "python"} or not_run(block):
                    continue
                text = self.fill(block)
                if block.lang == "python" and "app = FastAPI()" in text:
                    (self.workdir / "webapp.py").write_text(text)  # "Save it as webapp.py"
                    output = ""
                elif block.lang == "python":
                    output = python.run(text, block.where())
                elif text.startswith("uvicorn webapp:app"):
                    output = self.serve_webapp(text)
                else:
                    output = bash.run(text, block.where())
                for answer in json_answers(output):
                    assert not (isinstance(answer, dict) and {"detail", "error"} & set(answer)), (
                        block.where(),
                        answer,
                    )
                self.learn(block, output, bash)
                outputs.append(output)
        finally:
            bash.close()
            python.close()

    def fill(self, block: Block) -> str:
        text = block.text.replace("http://localhost:8000", self.base)
        text = text.replace("http://127.0.0.1:8000", self.base)
        text = text.replace(EXAMPLE_DATABASE, os.environ["DATABASE_URL"])
        if block.lang == "python":
            for prefix, name in PYTHON_CLIENTS.get(block.page, {}).items():
                client = self.facts.clients.get(name, {})
                text = text.replace(f'"<{prefix}client_id>"', repr(client.get("id")))
                text = text.replace(f'"<{prefix}client_secret>"', repr(client.get("secret")))
            return text
        if "manage client delete CLIENT_ID" in text:  # the browser app registered just before
            text = text.replace("CLIENT_ID", self.facts.clients["SPA"]["id"])
        if "<token from the link>" in text:
            # a verification or (mailed to a new address) a change link: the newest of either
            path = (
                "/reset-password" if "reset-password" in text else "/(?:verify-email|email/confirm)"
            )
            text = text.replace("<token from the link>", self.mailed_token(path))
        if "<session id>" in text:  # another session of the user: the "lost phone"
            text = text.replace("<session id>", self.another_session())
        if "<code from the app>" in text:
            code = pyotp.TOTP(self.facts.totp_secret).at(time.time() + 30 * self.facts.totp_steps)
            self.facts.totp_steps += 1  # a code, once used, is not accepted again
            text = text.replace("<code from the app>", code)
        text = text.replace("<mfa_token>", self.facts.mfa_token)
        return text.replace("<recovery code>", self.facts.recovery_code)

    def learn(self, block: Block, output: str, bash: Bash) -> None:
        names = re.findall(r'manage client create "([^"]+)"', block.text)
        printed = re.findall(r"^client_id: (\S+)$(?:\nclient_secret: (\S+)$)?", output, re.M)
        assert len(printed) == len(names), (block.where(), output)
        for name, (client_id, secret) in zip(names, printed, strict=True):
            self.facts.clients[name] = {"id": client_id, "secret": secret}
            if prefix := CLIENT_VARIABLES.get(name):
                bash.export(f"{prefix}_ID", client_id)
                bash.export(f"{prefix}_SECRET", secret)
        for answer in json_answers(output):
            if not isinstance(answer, dict):
                continue
            if answer.get("token_type") == "Bearer" and "access_token" in answer:
                self.facts.token = answer["access_token"]
                bash.export("TOKEN", self.facts.token)
            if "secret" in answer:
                self.facts.totp_secret = answer["secret"]
            if "recovery_codes" in answer:
                self.facts.recovery_code = answer["recovery_codes"][0]
            if "mfa_token" in answer:
                self.facts.mfa_token = answer["mfa_token"]

    def mailed_token(self, path: str) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = re.findall(rf"{path}\?token=([\w-]+)", self.log.read_text())
            if found and found[-1] not in self.facts.used_links:
                self.facts.used_links.add(found[-1])
                return str(found[-1])
            time.sleep(0.05)
        raise AssertionError(f"no new {path} link in the log")

    def another_session(self) -> str:
        phone = httpx.post(
            f"{self.base}/api/v1/auth/login",
            data={"username": "user@example.com", "password": "a-new-password-123"},
        ).json()["access_token"]
        listed = httpx.get(
            f"{self.base}/api/v1/users/me/sessions", headers={"Authorization": f"Bearer {phone}"}
        ).json()
        return str(next(s["id"] for s in listed if s["current"]))

    def serve_webapp(self, command: str) -> str:
        """Start the sample app as written (on a free port), open its home page and its
        sign-in, which must lead to this service's login page."""
        port = free_port()
        app = subprocess.Popen(
            ["bash", "-c", "exec " + command.replace("--port 5000", f"--port {port}")],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                assert app.poll() is None, app.stderr.read() if app.stderr else ""
                try:
                    home = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the sample app did not start"
                    time.sleep(0.1)
            assert home.status_code == 200 and "Sign in" in home.text, home.text
            login = httpx.get(f"http://127.0.0.1:{port}/login", timeout=10)
            assert login.status_code == 302, login.text
            assert login.headers["location"].startswith(f"{self.base}/oauth/authorize?")
            page = httpx.get(login.headers["location"], timeout=10)
            assert page.status_code == 200 and "password" in page.text, page.text
            return home.text
        finally:
            os.killpg(app.pid, signal.SIGTERM)
            app.wait(timeout=10)


def test_every_example_runs_as_written_in_order(workdir: Path) -> None:
    log = workdir / "server.log"
    env = {"LOG_LEVEL": "INFO", "EMAIL_BACKEND": "console", "PUBLIC_URL": "http://127.0.0.1:{port}"}
    pages_blocks: dict[str, list[Block]] = {}
    for block in all_blocks():
        pages_blocks.setdefault(block.page, []).append(block)
    with running_server(env, log_path=log) as base:
        examples = Examples(base, workdir, log)
        for page, page_blocks in pages_blocks.items():
            examples.run_page(page, page_blocks)
    out = examples.outputs

    login, promoted, dashboard, job, job_token = out["README.md"]
    registered, me = json_answers(login)
    assert registered["id"] == me["id"] and me["email"] == "ada@example.com"  # type: ignore[index]
    assert "ada@example.com is now admin." in promoted and '"items"' in promoted
    assert "client_id: " in dashboard and "client_id: " in job
    assert json.loads(job_token)["scope"] == "roles"

    register, tokens, me, refresh, logout = out["authentication.md"]
    assert json.loads(register)["email"] == "user@example.com"
    assert tokens == "" and refresh == ""
    assert json.loads(me)["email"] == "user@example.com"
    assert logout == "401"

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
    ) = out["account.md"]
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

    discovery, _created, deleted, reports, _webapp, home = out["oidc.md"]
    assert json.loads(discovery)["issuer"] == base
    assert "Deleted client" in deleted and "client_id: " in reports
    assert "Sign in" in home

    _job, token, fetched, _verified, _api, introspected, live, revoked = out["resource-servers.md"]
    assert json.loads(token)["token_type"] == "Bearer"
    assert fetched == "roles 1800"
    assert json.loads(introspected)["active"] is True
    assert live == "True" and revoked == ""

    setup, check = out["roles-and-permissions.md"]
    assert "ada@example.com is a member of acme-corp: order-editor" in setup
    assert json.loads(check) == {"results": [True, False]}

    dry_run, report, logins, api_import = out["bringing-users.md"]
    assert "│       4 │       0 │       0 │     1 │" in dry_run and "dry run" in dry_run
    assert "exit 1" in report and '"status":"created"' in report
    assert (
        logins.splitlines() == ["['access_token', 'expires_in', 'refresh_token', 'token_type']"] * 2
    )
    assert [r["status"] for r in json.loads(api_import)["results"]] == ["updated", "created"]

    migrated = out["database.md"]
    assert len(migrated) == 1
    _key, verified_claims, staged, _rotated = out["signing-keys.md"]
    assert "published now; signs from" in staged and "next" in staged  # rotate, then list
    assert verified_claims.endswith(" roles")
