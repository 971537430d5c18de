"""The soak (bench/soak.py), shortened: two instances on PostgreSQL and Redis under a mixed
load, then nothing lost, doubled or half-written. Run with `pytest -m soak` (.ci/run does).

The soak works in a database of its own, named after the suite's with `_soak` appended,
which it drops and creates afresh.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.core.config import get_settings

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(
        get_settings().is_sqlite or not os.environ.get("REDIS_URL"),
        reason="needs PostgreSQL (TEST_DATABASE_URL) and Redis (REDIS_URL), as .ci/run provides",
    ),
]

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"
SECONDS = 10
CHECKS = (
    "no 5xx answers",
    "no unexpected answer or client error",
    "no duplicate users",
    "session chains consistent",
    "one audit event per action",
    "roles as last set",
    "no traceback in the instances' logs",
)


def test_soak_loses_nothing() -> None:
    url = make_url(get_settings().DATABASE_URL)
    soak_url = url.set(database=f"{url.database}_soak").render_as_string(hide_password=False)
    result = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--seconds",
            str(SECONDS),
            "--clients",
            "4",
            "--database-url",
            soak_url,
            "--redis-url",
            os.environ["REDIS_URL"],
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 180,
        check=False,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    for check in CHECKS:
        assert f"[ok] {check}:" in result.stdout
    # the load did happen, with every kind of action
    for action in ("register", "login", "refresh", "me", "logout", "refresh_race"):
        assert f"\n{action} " in result.stdout

    maintenance = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with maintenance.connect() as connection:  # kept only when the soak fails, to look into
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}_soak" WITH (FORCE)'))
    maintenance.dispose()
