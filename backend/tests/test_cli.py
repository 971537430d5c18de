"""`manage`, run as installed, in a subprocess on the test database (inherited environment).

Each run costs about a second, so each test runs as few commands as it can.
"""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.permissions import Role
from app.db import get_engine
from app.models.user import User
from tests.utils import api, login

MANAGE = Path(sys.executable).parent / "manage"


def manage(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `manage` with the test environment, away from any `.env` in the repository."""
    return subprocess.run(
        [str(MANAGE), *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=cwd,
        timeout=60,
        check=False,
    )


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """A refusal: exit 1 and exactly one line on stderr, no traceback. Returns the line."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def stored(user_id: object) -> User | None:
    with Session(get_engine(), expire_on_commit=False) as session:
        return session.get(User, user_id)


def test_manage_script_is_installed() -> None:
    assert MANAGE.is_file()
    assert os.access(MANAGE, os.X_OK)


def test_create_superuser_takes_its_defaults_from_first_superuser_settings(
    client: TestClient, tmp_path: Path
) -> None:
    result = manage("create-superuser", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "root@example.com" in result.stdout
    tokens = login(
        client, os.environ["FIRST_SUPERUSER_EMAIL"], os.environ["FIRST_SUPERUSER_PASSWORD"]
    )
    me = client.get(api("/users/me"), headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["role"] == "admin"
    assert me.json()["is_verified"] is True


def test_create_superuser_with_a_taken_email_exits_1(user: User, tmp_path: Path) -> None:
    result = manage(
        "create-superuser",
        "--email",
        user.email.upper(),
        "--password",
        "another-password",
        cwd=tmp_path,
    )
    assert "already exists" in refused(result)
    row = stored(user.id)
    assert row is not None and row.role == Role.USER


def test_set_role_changes_the_role(user: User, admin: User, tmp_path: Path) -> None:
    result = manage("set-role", user.email, "moderator", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = stored(user.id)
    assert row is not None and row.role == Role.MODERATOR


def test_set_role_of_an_unknown_email_exits_1(tmp_path: Path) -> None:
    line = refused(manage("set-role", "ghost@example.com", "admin", cwd=tmp_path))
    assert "ghost@example.com" in line


def test_set_role_with_an_unknown_role_exits_2(user: User, tmp_path: Path) -> None:
    result = manage("set-role", user.email, "superuser", cwd=tmp_path)
    assert result.returncode == 2
    assert "superuser" in result.stderr
    row = stored(user.id)
    assert row is not None and row.role == Role.USER


@pytest.mark.parametrize(
    "command", [["set-role", "{email}", "user"], ["deactivate", "{email}"]], ids=lambda c: c[0]
)
def test_last_active_admin_cannot_be_removed_from_the_cli(
    admin: User, user_factory: Callable[..., User], tmp_path: Path, command: list[str]
) -> None:
    user_factory(Role.ADMIN, is_active=False)
    args = [part.format(email=admin.email) for part in command]
    assert "last active admin" in refused(manage(*args, cwd=tmp_path))
    row = stored(admin.id)
    assert row is not None and (row.role, row.is_active) == (Role.ADMIN, True)


def test_list_users_prints_a_table_of_every_user(
    admin: User, moderator: User, user: User, tmp_path: Path
) -> None:
    result = manage("list-users", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for account in (admin, moderator, user):
        line = next(line for line in result.stdout.splitlines() if account.email in line)
        assert account.role.value in line


def test_deactivate_then_activate(client: TestClient, user: User, tmp_path: Path) -> None:
    tokens = login(client, user.email)
    assert manage("deactivate", user.email, cwd=tmp_path).returncode == 0
    row = stored(user.id)
    assert row is not None and row.is_active is False
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get(api("/users/me"), headers=headers).status_code == 401

    assert manage("activate", user.email.upper(), cwd=tmp_path).returncode == 0
    row = stored(user.id)
    assert row is not None and row.is_active is True
    assert login(client, user.email)["access_token"]


def test_migrate_on_an_up_to_date_database_succeeds(tmp_path: Path) -> None:
    result = manage("migrate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "latest migration" in result.stdout


def test_help_shows_every_option_whole_at_80_columns(tmp_path: Path) -> None:
    """Rich's help panels cut long option names at 80 columns; the plain help wraps them."""
    result = subprocess.run(
        [str(MANAGE), "client", "create", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80", "TERM": "xterm"},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for option in ("--redirect-uri", "--post-logout-redirect-uri", "--first-party", "--scope"):
        assert option in result.stdout
    assert "…" not in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
