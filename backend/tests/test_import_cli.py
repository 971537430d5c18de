"""`manage import users FILE.jsonl`, run as installed: per-line results and a summary, exit 1
when a line is an error (the others imported), one clear line for a file that is not JSON
Lines, the Firebase parameters on the command line, --dry-run and --update."""

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from passlib.hash import bcrypt

from tests.test_cli import manage, refused
from tests.test_import_hashes import FIREBASE, FIREBASE_HASH, FIREBASE_SALT
from tests.utils import login
from tests.utils.imports import stored

FIREBASE_LINE_HASH = f"firebase-scrypt${FIREBASE_SALT}${FIREBASE_HASH}"

SECRET = "violet quartz heron"


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def summary(stdout: str) -> list[int]:
    """The summary table's counts: created, updated, skipped, error."""
    row = [line for line in stdout.splitlines() if line.count("│") == 5][-1]
    return [int(cell) for cell in row.strip("│ ").split("│")]


def test_a_file_imports_with_per_line_results_then_a_second_run_changes_nothing(
    tmp_path: Path, client: TestClient
) -> None:
    hashed = bcrypt.using(rounds=4).hash(SECRET)
    good = write_lines(
        tmp_path / "users.jsonl",
        [{"email": f"user{n}@example.com", "password_hash": hashed} for n in range(5)],
    )
    first = manage("import", "users", str(good), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert summary(first.stdout) == [5, 0, 0, 0]
    assert hashed not in first.stdout + first.stderr
    assert login(client, "user3@example.com", SECRET)["access_token"]

    report = tmp_path / "report.jsonl"
    again = manage("import", "users", str(good), "--update", "--report", str(report), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert summary(again.stdout) == [0, 0, 5, 0]
    assert again.stderr.strip() == ""  # only errors are printed line by line
    first_result = json.loads(report.read_text().splitlines()[0])
    assert first_result == {
        "line": 1,
        "email": "user0@example.com",
        "status": "skipped",
        "reason": "unchanged",
    }


def test_an_error_line_is_reported_the_others_import_and_the_exit_is_1(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        json.dumps({"email": "ok@example.com"})
        + "\n{broken\n"
        + json.dumps({"email": "bad@example.com", "password_hash": "md5$x$y"})
        + "\n"
    )
    result = manage("import", "users", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert summary(result.stdout) == [1, 0, 0, 2]
    assert "line 2 - error: not valid JSON" in result.stderr
    assert "line 3 bad@example.com error: unknown password hash format" in result.stderr
    assert "md5$x$y" not in result.stderr and "Traceback" not in result.stderr
    assert stored("ok@example.com") is not None


def test_a_file_that_is_not_json_lines_is_one_clear_line(tmp_path: Path) -> None:
    csv = tmp_path / "users.csv"
    csv.write_text("email,password\nada@example.com,secret\n")
    assert refused(manage("import", "users", str(csv), cwd=tmp_path)) == (
        f"Error: {csv} is not JSON Lines: line 1 is not a JSON object"
    )
    array = tmp_path / "users.json"
    array.write_text(json.dumps([{"email": "ada@example.com"}]))
    assert "holds a JSON array, not JSON Lines" in refused(
        manage("import", "users", str(array), cwd=tmp_path)
    )
    assert stored("ada@example.com") is None


def test_firebase_parameters_on_the_command_line_and_a_dry_run(
    tmp_path: Path, client: TestClient
) -> None:
    path = write_lines(
        tmp_path / "firebase.jsonl",
        [{"email": "fb@example.com", "password_hash": FIREBASE_LINE_HASH}],
    )
    options = [
        "--firebase-signer-key", str(FIREBASE["signer_key"]),
        "--firebase-salt-separator", str(FIREBASE["salt_separator"]),
        "--firebase-rounds", "8", "--firebase-mem-cost", "14",
    ]  # fmt: skip
    dry = manage("import", "users", str(path), "--dry-run", *options, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout and summary(dry.stdout) == [1, 0, 0, 0]
    assert stored("fb@example.com") is None

    missing = manage("import", "users", str(path), cwd=tmp_path)
    assert missing.returncode == 1 and "project's parameters" in missing.stderr

    done = manage("import", "users", str(path), *options, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert login(client, "fb@example.com", "user1password")["access_token"]
    assert (user := stored("fb@example.com")) is not None
    assert user.hashed_password.startswith("$2b$04$")
