"""How long `manage import users` takes for many users with bcrypt hashes (issue 26: 100,000
in under 5 minutes). The hashes are stored as they are, never recomputed, so their cost does
not matter to the import: the file cycles through 100 real bcrypt hashes of cost 12.

    .venv/bin/python bench/import_users.py [--users 100000] [--database-url URL]

Makes the file, a fresh database (SQLite in a temporary directory unless --database-url names
an empty PostgreSQL database), migrates it, then times the import and a second run of the same
file (every line found again and skipped). Prints both, with lines a second.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bcrypt

BIN = Path(sys.executable).parent
DISTINCT_HASHES = 100


def make_file(path: Path, users: int) -> None:
    hashes = [
        bcrypt.hashpw(f"password-{n}-of-the-old-system".encode(), bcrypt.gensalt(12)).decode()
        for n in range(DISTINCT_HASHES)
    ]
    with path.open("w") as out:
        for n in range(users):
            line = {
                "email": f"user{n}@example.com",
                "full_name": f"User Number {n}",
                "password_hash": hashes[n % DISTINCT_HASHES],
                "external_id": f"legacy-{n}",
                "is_verified": True,
            }
            out.write(json.dumps(line) + "\n")


def run(env: dict[str, str], *args: str) -> float:
    began = time.perf_counter()
    done = subprocess.run(  # noqa: S603 (the project's own manage, with arguments made here)
        [str(BIN / "manage"), *args], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"manage {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    print(done.stdout.strip())
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as scratch:
        folder = Path(scratch)
        file = folder / "users.jsonl"
        began = time.perf_counter()
        make_file(file, args.users)
        print(f"made {args.users:,} lines in {time.perf_counter() - began:.0f} s")
        env = {
            **os.environ,
            "DATABASE_URL": args.database_url or f"sqlite:///{folder}/bench.db",
            "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "SECRET_KEY_FILE": str(folder / ".secret_key"),
            "LOG_LEVEL": "WARNING",
        }
        run(env, "migrate")
        first = run(env, "import", "users", str(file))
        print(f"import: {first:.0f} s, {args.users / first:,.0f} lines/s")
        second = run(env, "import", "users", str(file))
        print(f"second run (all skipped): {second:.0f} s, {args.users / second:,.0f} lines/s")


if __name__ == "__main__":
    main()
