"""Fuzzing: schemathesis over the whole OpenAPI document, against a live server, as an admin.

No answer may be a 500; every answer must use a documented status code, match its documented
schema and content type, and operations that need a token must refuse a request without one.
Bounded by example count (MAX_EXAMPLES per operation and phase) and by a hard time limit.
Run with `pytest -m fuzz` (.ci/run does, on PostgreSQL and Redis); the seed is printed, and
`--seed N` in FUZZ_ARGS replays a run.
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.config import get_settings
from tests.utils.server import running_server

pytestmark = pytest.mark.fuzz

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
BACKEND = Path(__file__).resolve().parent.parent
MAX_EXAMPLES = 100
TIME_LIMIT_S = 240
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "response_schema_conformance",
        "content_type_conformance",
        "ignored_auth",
    ]
)
# Limits high enough that the fuzzer reaches every handler; 429 answers are tested elsewhere.
SERVER_ENV = {
    "RATE_LIMIT_LOGIN": "100000/minute",
    "RATE_LIMIT_REGISTER": "100000/hour",
    "RATE_LIMIT_PASSWORD_RECOVERY": "100000/hour",
    "LOG_LEVEL": "WARNING",
}


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with running_server(SERVER_ENV, log_path=log) as base:
        command = [
            str(SCHEMATHESIS),
            "run",
            f"{base}{get_settings().API_V1_STR}/openapi.json",
            "--url",
            base,
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-color",
            *shlex.split(os.environ.get("FUZZ_ARGS", "")),
        ]
        env = {
            **os.environ,
            "PYTHONPATH": str(BACKEND),
            "SCHEMATHESIS_HOOKS": "tests.utils.fuzz_hooks",  # a live admin token, always
        }
        result = subprocess.run(
            command,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT_S,
            check=False,
        )
    output = result.stdout + result.stderr
    print(output[-3000:])
    assert result.returncode == 0, output[-12000:]
    assert "Test cases:" in output
    server_log = log.read_text(errors="replace")
    assert "Traceback" not in server_log, server_log[-5000:]
