"""`manage` names the database it cannot reach and why, in one line, never the password."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from app.db_diagnosis import unreachable

MANAGE = Path(sys.executable).parent / "manage"


def _error(message: str) -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception(message))


@pytest.mark.parametrize(
    ("driver_says", "reason"),
    [
        (
            'connection to server at "db" (10.0.0.5), port 5432 failed: Connection refused',
            "refused",
        ),
        ("connection to server failed: timeout expired", "timed out"),
        ('could not translate host name "db" to address: Name or service not known', "not found"),
        ('FATAL:  password authentication failed for user "app"', "authentication failed"),
        ('FATAL:  database "auth" does not exist', "database missing"),
        ("unable to open database file", "cannot open the file"),
        ("attempt to write a readonly database", "read-only"),
        ("something else entirely", "Exception"),
    ],
)
def test_the_reason_is_said_in_words(driver_says: str, reason: str) -> None:
    line = unreachable(_error(driver_says), "postgresql://app:s3cr3t-pw@db:5432/auth")
    assert line.startswith("database unreachable: PostgreSQL at db:5432, database auth, user app:")
    assert reason in line
    assert "s3cr3t-pw" not in line and "\n" not in line


def test_a_sqlite_file_is_named() -> None:
    line = unreachable(_error("unable to open database file"), "sqlite:////srv/auth/app.db")
    assert line.startswith("database unreachable: SQLite file /srv/auth/app.db:")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://app:s3cr3t-pw@127.0.0.1:1/auth", "connection refused"),
        ("sqlite:////nonexistent-dir-for-tests/app.db", "cannot open the file"),
    ],
)
def test_manage_says_which_database_and_why(tmp_path: Path, url: str, reason: str) -> None:
    result = subprocess.run(
        [str(MANAGE), "list-users"],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": url},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("Error: database unreachable: ") and reason in lines[0]
    assert "s3cr3t-pw" not in result.stderr
