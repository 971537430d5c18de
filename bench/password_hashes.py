"""What one password check costs the server, per scheme, at the service's default parameters:
the verification a login runs in the hash pool (core/passwords.py), timed alone, without HTTP.

    .venv/bin/python bench/password_hashes.py [--checks 10]

Prints the median wall time and the median CPU time (the whole process's: argon2id's lanes run
in threads of their own) of one verification. On a shared machine the wall time moves with the
load, the CPU time much less: both are in bench/README.md.
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))
os.environ.setdefault("SECRET_KEY", "bench-secret-key-that-is-long-enough-0123456789")
for name in ("BCRYPT_ROUNDS", "ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM"):
    os.environ.pop(name, None)  # the defaults of core/config.py

from app.core import passwords  # noqa: E402
from app.core.config import get_settings  # noqa: E402

PASSWORD = "correct-horse-battery"


def timed(check: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of `check()` over `runs` runs, after one warm-up."""
    check()
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        check()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def scheme_check(scheme: str) -> Callable[[], object]:
    """One login's verification of the right password against a current hash of `scheme`."""
    os.environ["PASSWORD_HASH"] = scheme
    get_settings.cache_clear()
    passwords._context.cache_clear()
    passwords._dummy_hash.cache_clear()
    hashed = passwords.hash_password_sync(PASSWORD)
    context = passwords._context()
    return lambda: context.verify(PASSWORD, hashed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=10)
    args = parser.parse_args()
    print(f"{'scheme':<10} {'parameters':<32} {'wall ms':>8} {'CPU ms':>8}")
    for scheme in ("bcrypt", "argon2id"):
        check = scheme_check(scheme)
        settings = get_settings()
        parameters = (
            f"cost {settings.BCRYPT_ROUNDS}"
            if scheme == "bcrypt"
            else f"t={settings.ARGON2_TIME_COST} m={settings.ARGON2_MEMORY_COST} KiB "
            f"p={settings.ARGON2_PARALLELISM}"
        )
        wall, cpu = timed(check, args.checks)
        print(f"{scheme:<10} {parameters:<32} {wall * 1000:>8.0f} {cpu * 1000:>8.0f}")


if __name__ == "__main__":
    main()
