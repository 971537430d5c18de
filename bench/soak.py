#!/usr/bin/env python3
"""Soak: two instances on one PostgreSQL and one Redis, a mixed load for a while, then the
database is checked for anything lost, doubled or half-written.

    python bench/soak.py                      # 60 s, its own database authsvc_soak
    python bench/soak.py --seconds 10 --clients 4
    python bench/soak.py --database-url postgresql://postgres@127.0.0.1:5432/my_soak

Needs the test extras, `pip install -e '.[test]'` (httpx drives the load), a PostgreSQL server
it may create a database on, and Redis.

It starts two `manage serve --workers 2` on free loopback ports (same SECRET_KEY, same
database, same Redis), then client threads register, log in (and fail to), refresh, read
/users/me, log out, race two refreshes of one token at both instances, race two
registrations of one email, while an admin thread changes roles. Afterwards it checks: no
5xx and no unexpected answer; no duplicate user; every session chain consistent (the
database's one live refresh token of each session is the last one its client received, the
one before it is the one it replaced, revoked sessions are exactly the logged-out and raced
ones); one audit event per action. It prints its figures and exits 1 if a check fails.

The database named by --database-url is dropped and created afresh (its name must contain
"soak"); Redis is only used for rate-limit counts. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

API = "/api/v1"
PASSWORD = "soak-password-123"
ADMIN_EMAIL = "admin@soak.example.com"
ADMIN_PASSWORD = "soak-root-passphrase-123"
MANAGE = Path(sys.executable).parent / "manage"
START_TIMEOUT_S = 90
REQUEST_TIMEOUT_S = 30
MAX_USERS_PER_CLIENT = 60
MAX_LIVE_SESSIONS_PER_CLIENT = 12

# What each client does, and how often (weights).
ACTIONS = {
    "register": 10,
    "login": 14,
    "login_wrong_password": 4,
    "refresh": 24,
    "me": 32,
    "logout": 6,
    "refresh_race": 3,
    "register_race": 2,
}


@dataclass
class Live:
    """A session as its client knows it: its tokens and the chain of refresh jtis."""

    sid: str
    access: str
    refresh: str
    jtis: list[str]
    ended: str | None = None  # "logout" or "race" once the client ended it


@dataclass
class Tally:
    """What the clients did and saw; merged at the end."""

    requests: int = 0
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    done: Counter[str] = field(default_factory=Counter)  # successful actions
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def merge(self, other: Tally) -> None:
        self.requests += other.requests
        self.statuses.update(other.statuses)
        self.unexpected.update(other.unexpected)
        self.errors.update(other.errors)
        self.done.update(other.done)
        for name, values in other.latencies.items():
            self.latencies[name].extend(values)


def claims(token: str) -> dict[str, Any]:
    """A JWT's payload, unverified (the client only reads its own token's sid and jti)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


class Client:
    """One load thread: its own users and sessions, both instances."""

    def __init__(self, bases: list[str], deadline: float, seed: int) -> None:
        self.http = [httpx.Client(base_url=f"{b}{API}", timeout=REQUEST_TIMEOUT_S) for b in bases]
        self.bases = bases
        self.deadline = deadline
        self.rng = random.Random(seed)  # noqa: S311  (load choices, not secrets)
        self.tally = Tally()
        self.users: list[str] = []
        self.sessions: list[Live] = []
        self.racer = ThreadPoolExecutor(2)

    # -- plumbing ------------------------------------------------------------------------

    def call(
        self, action: str, method: str, path: str, *, instance: int | None = None, **kw: Any
    ) -> httpx.Response | None:
        client = self.http[self.rng.randrange(2) if instance is None else instance]
        start = time.perf_counter()
        try:
            response = client.request(method, path, **kw)
        except httpx.HTTPError as error:
            self.tally.errors[f"{action}: {type(error).__name__}"] += 1
            return None
        self.tally.latencies[action].append(time.perf_counter() - start)
        self.tally.requests += 1
        self.tally.statuses[(action, response.status_code)] += 1
        return response

    def expect(self, action: str, response: httpx.Response | None, *statuses: int) -> bool:
        if response is None:
            return False
        if response.status_code not in statuses:
            self.tally.unexpected[(action, f"{response.status_code} {response.text[:120]}")] += 1
            return False
        return True

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def live(self) -> list[Live]:
        return [s for s in self.sessions if s.ended is None]

    # -- actions -------------------------------------------------------------------------

    def register(self) -> None:
        email = f"u{uuid.uuid4().hex[:16]}@soak.example.com"
        body = {"email": email, "password": PASSWORD, "full_name": "Sam Tester"}
        if self.expect("register", self.call("register", "POST", "/auth/register", json=body), 201):
            self.users.append(email)
            self.tally.done["register"] += 1

    def register_race(self) -> None:
        """One email, registered at both instances at once: one 201, one 409."""
        email = f"r{uuid.uuid4().hex[:16]}@soak.example.com"
        body = {"email": email, "password": PASSWORD}
        results = self.race("register_race", "/auth/register", body)
        if sorted(results) == [201, 409]:
            self.users.append(email)
            self.tally.done["register"] += 1
        else:
            self.tally.unexpected[("register_race", str(sorted(results)))] += 1

    def login(self) -> None:
        if not self.users:
            return self.register()
        if len(self.live()) >= MAX_LIVE_SESSIONS_PER_CLIENT:
            return self.logout()
        email = self.rng.choice(self.users)
        form = {"username": email, "password": PASSWORD}
        response = self.call("login", "POST", "/auth/login", data=form)
        if self.expect("login", response, 200):
            assert response is not None
            pair = response.json()
            refresh = claims(pair["refresh_token"])
            self.sessions.append(
                Live(refresh["sid"], pair["access_token"], pair["refresh_token"], [refresh["jti"]])
            )
            self.tally.done["login"] += 1

    def login_wrong_password(self) -> None:
        if not self.users:
            return self.register()
        form = {"username": self.rng.choice(self.users), "password": "not-the-password"}
        response = self.call("login_wrong_password", "POST", "/auth/login", data=form)
        if self.expect("login_wrong_password", response, 401):
            self.tally.done["login_failed"] += 1

    def refresh(self) -> None:
        live = self.live()
        if not live:
            return self.login()
        session = self.rng.choice(live)
        body = {"refresh_token": session.refresh}
        response = self.call("refresh", "POST", "/auth/refresh", json=body)
        if self.expect("refresh", response, 200):
            assert response is not None
            self.rotated(session, response.json())
            self.tally.done["refresh"] += 1

    def rotated(self, session: Live, pair: dict[str, Any]) -> None:
        refresh = claims(pair["refresh_token"])
        assert refresh["sid"] == session.sid
        session.access, session.refresh = pair["access_token"], pair["refresh_token"]
        session.jtis.append(refresh["jti"])

    def me(self) -> None:
        live = self.live()
        if not live:
            return self.login()
        session = self.rng.choice(live)
        response = self.call("me", "GET", "/users/me", headers=self.bearer(session.access))
        if self.expect("me", response, 200):
            self.tally.done["me"] += 1

    def logout(self) -> None:
        live = self.live()
        if not live:
            return self.login()
        session = self.rng.choice(live)
        response = self.call("logout", "POST", "/auth/logout", headers=self.bearer(session.access))
        if self.expect("logout", response, 204):
            session.ended = "logout"
            self.tally.done["logout"] += 1

    def refresh_race(self) -> None:
        """One refresh token presented at both instances at once: one rotation wins, the
        other is reuse, which revokes the session."""
        live = self.live()
        if not live:
            return self.login()
        session = self.rng.choice(live)
        results = self.race("refresh_race", "/auth/refresh", {"refresh_token": session.refresh})
        if sorted(results) == [200, 401]:
            session.ended = "race"
            self.tally.done["refresh_race"] += 1
        else:
            self.tally.unexpected[("refresh_race", str(sorted(results)))] += 1
            session.ended = "race"

    def race(self, action: str, path: str, body: dict[str, Any]) -> list[int]:
        barrier = threading.Barrier(2, timeout=REQUEST_TIMEOUT_S)

        def one(instance: int) -> int:
            barrier.wait()
            response = self.call(action, "POST", path, instance=instance, json=body)
            return response.status_code if response is not None else 0

        futures = [self.racer.submit(one, instance) for instance in (0, 1)]
        return [future.result(timeout=2 * REQUEST_TIMEOUT_S) for future in futures]

    def run(self) -> None:
        names = list(ACTIONS)
        weights = list(ACTIONS.values())
        actions: dict[str, Callable[[], None]] = {name: getattr(self, name) for name in names}
        while time.monotonic() < self.deadline:
            name = self.rng.choices(names, weights)[0]
            if name in ("register", "register_race") and len(self.users) >= MAX_USERS_PER_CLIENT:
                name = "login"
            try:
                actions[name]()
            except Exception as error:  # a bug in the soak or an answer it cannot read
                self.tally.errors[f"{name}: {type(error).__name__}: {error}"] += 1

    def close(self) -> None:
        self.racer.shutdown()
        for client in self.http:
            client.close()


class Admin:
    """Logs in once, then flips users' roles (user <-> moderator) and lists users."""

    def __init__(self, bases: list[str], deadline: float, clients: list[Client]) -> None:
        self.client = Client(bases, deadline, seed=0)
        self.clients = clients
        self.roles: dict[str, str] = {}  # user id -> the role last set

    def run(self) -> None:
        c = self.client
        form = {"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        response = c.call("admin_login", "POST", "/auth/login", data=form)
        if not c.expect("admin_login", response, 200):
            return
        assert response is not None
        c.tally.done["login"] += 1
        headers = c.bearer(response.json()["access_token"])
        ids: dict[str, str] = {}
        total = 1
        while time.monotonic() < c.deadline:
            if c.rng.random() < 0.3 or not ids:
                page = {"limit": 100, "skip": c.rng.randrange(total) // 100 * 100}
                listed = c.call("admin_list", "GET", "/users", headers=headers, params=page)
                if c.expect("admin_list", listed, 200):
                    assert listed is not None
                    total = max(1, listed.json()["total"])
                    for item in listed.json()["items"]:
                        if item["email"] != ADMIN_EMAIL:
                            ids[item["email"]] = item["id"]
                            self.roles.setdefault(item["id"], item["role"])
                time.sleep(0.05)  # the admin is one person, not a load generator
                continue
            user_id = c.rng.choice(list(ids.values()))
            new = "moderator" if self.roles[user_id] == "user" else "user"
            patch = c.call(
                "admin_role", "PATCH", f"/users/{user_id}", headers=headers, json={"role": new}
            )
            if c.expect("admin_role", patch, 200):
                self.roles[user_id] = new
                c.tally.done["role_change"] += 1
            time.sleep(0.02)


# -- instances ---------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


@contextmanager
def instances(env: dict[str, str], workers: int, log_dir: Path) -> Iterator[list[str]]:
    """Two `manage serve` processes started at the same moment; their base URLs."""
    ports = free_ports(2)
    processes: list[subprocess.Popen[bytes]] = []
    with ExitStack() as stack:
        try:
            for index, port in enumerate(ports):
                log = stack.enter_context(open(log_dir / f"instance-{index}.log", "wb"))
                command = [str(MANAGE), "serve", "--port", str(port), "--workers", str(workers)]
                processes.append(
                    subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
                )
            bases = [f"http://127.0.0.1:{port}" for port in ports]
            deadline = time.monotonic() + START_TIMEOUT_S
            for index, base in enumerate(bases):
                while True:
                    if processes[index].poll() is not None:
                        tail = (log_dir / f"instance-{index}.log").read_text(errors="replace")
                        raise SystemExit(f"instance {index} exited:\n{tail[-3000:]}")
                    try:
                        if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit(f"instance {index} not ready in {START_TIMEOUT_S} s")
                    time.sleep(0.2)
            yield bases
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def fresh_database(url: str) -> str:
    """Drop and create the soak's database; its SQLAlchemy URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise SystemExit("--database-url must be a postgresql:// URL")
    name = parsed.database or ""
    if "soak" not in name:
        raise SystemExit(f"refusing to drop database {name!r}: its name must contain 'soak'")
    admin = create_engine(
        parsed.set(drivername="postgresql+psycopg", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


# -- checks ------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def check_database(url: str, tally: Tally, clients: list[Client], admin: Admin) -> list[Check]:
    engine = create_engine(url)
    checks: list[Check] = []
    with engine.connect() as db:
        users = db.execute(text('SELECT count(*) FROM "user"')).scalar_one()
        duplicates = db.execute(
            text('SELECT lower(email) FROM "user" GROUP BY lower(email) HAVING count(*) > 1')
        ).all()
        expected_users = tally.done["register"] + 1  # and the first admin
        checks.append(
            Check(
                "no duplicate users",
                not duplicates and users == expected_users,
                f"{users} users ({expected_users} expected), {len(duplicates)} duplicated emails",
            )
        )

        rows = {
            str(row.id): row
            for row in db.execute(
                text("SELECT id, refresh_jti, previous_jti, revoked_at FROM auth_session")
            )
        }
        known = [s for c in clients for s in c.sessions]
        broken: list[str] = []
        for s in known:
            row = rows.get(s.sid)
            if row is None:
                broken.append(f"{s.sid}: missing")
            elif s.ended is None and row.revoked_at is not None:
                broken.append(f"{s.sid}: revoked, but its client never ended it")
            elif s.ended is not None and row.revoked_at is None:
                broken.append(f"{s.sid}: ended by a {s.ended}, but live")
            elif s.ended != "race" and row.refresh_jti != s.jtis[-1]:
                broken.append(f"{s.sid}: live refresh token is not the last one handed out")
            elif s.ended != "race" and len(s.jtis) > 1 and row.previous_jti != s.jtis[-2]:
                broken.append(f"{s.sid}: the replaced token is not the one before it")
            elif s.ended == "race" and row.previous_jti != s.jtis[-1]:
                broken.append(f"{s.sid}: the race's winner did not replace the raced token")
        jtis = [row.refresh_jti for row in rows.values()]
        live = sum(1 for row in rows.values() if row.revoked_at is None)
        expected_sessions = tally.done["login"]
        checks.append(
            Check(
                "session chains consistent",
                not broken and len(set(jtis)) == len(jtis) and len(rows) == expected_sessions,
                f"{len(rows)} sessions ({expected_sessions} logins), {live} live, "
                f"{sum(len(s.jtis) - 1 for s in known)} rotations"
                + (f"; {len(broken)} broken, e.g. {broken[:3]}" if broken else ""),
            )
        )

        events = dict(
            db.execute(text("SELECT event, count(*) FROM audit_event GROUP BY event")).all()
        )
        expected_events = {
            "user.created": 1,  # the first admin, at start-up
            "user.registered": tally.done["register"],
            "auth.login_succeeded": tally.done["login"],
            "auth.login_failed": tally.done["login_failed"],
            "auth.logout": tally.done["logout"],
            "auth.refresh_reuse_detected": tally.done["refresh_race"],
            "user.role_changed": tally.done["role_change"],
        }
        expected_events = {k: v for k, v in expected_events.items() if v}
        mismatched = {
            event: (events.get(event, 0), expected_events.get(event, 0))
            for event in set(events) | set(expected_events)
            if events.get(event, 0) != expected_events.get(event, 0)
        }
        checks.append(
            Check(
                "one audit event per action",
                not mismatched,
                f"{sum(events.values())} events"
                + (f"; (found, expected): {mismatched}" if mismatched else ""),
            )
        )

        roles = dict(db.execute(text('SELECT CAST(id AS TEXT), role FROM "user"')).all())
        wrong_roles = [i for i, role in admin.roles.items() if roles.get(i) != role]
        checks.append(
            Check(
                "roles as last set",
                not wrong_roles,
                f"{len(admin.roles)} users seen by the admin"
                + (f"; {len(wrong_roles)} differ" if wrong_roles else ""),
            )
        )
    engine.dispose()
    return checks


# -- main --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(tally: Tally, checks: list[Check], seconds: float, logs_clean: Check) -> bool:
    server_errors = sum(n for (_, status), n in tally.statuses.items() if status >= 500)
    rate = tally.requests / seconds
    print(f"\n== soak: {tally.requests} requests in {seconds:.1f} s ({rate:.0f}/s)")
    print(f"{'action':<22}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  statuses")
    for action in sorted(tally.latencies):
        values = tally.latencies[action]
        statuses = ", ".join(
            f"{status}: {n}"
            for (name, status), n in sorted(tally.statuses.items())
            if name == action
        )
        p50, p95, p99 = (percentile(values, q) * 1000 for q in (50, 95, 99))
        print(f"{action:<22}{len(values):>9}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}  {statuses}")
    print("actions done: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.done.items())))
    results = [
        Check("no 5xx answers", server_errors == 0, f"{server_errors} answers >= 500"),
        Check(
            "no unexpected answer or client error",
            not tally.unexpected and not tally.errors,
            f"{sum(tally.unexpected.values())} unexpected, {sum(tally.errors.values())} errors"
            + (f": {dict(tally.unexpected.most_common(5))}" if tally.unexpected else "")
            + (f" {dict(tally.errors.most_common(5))}" if tally.errors else ""),
        ),
        *checks,
        logs_clean,
    ]
    print()
    for check in results:
        print(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
    return all(check.ok for check in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="length of the load (60)")
    parser.add_argument("--clients", type=int, default=6, help="load threads (6), + one admin")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per instance (2)")
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/authsvc_soak",
        help="PostgreSQL database for the soak alone: dropped and created afresh",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="Redis (db 14)")
    parser.add_argument(
        "--bcrypt-rounds", type=int, default=10, help="cost of hashes (10, production's least)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the clients' choices")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 3600 or not 1 <= args.clients <= 64:
        parser.error("--seconds must be in 1..3600 and --clients in 1..64")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)

    database_url = fresh_database(args.database_url)
    log_dir = Path(tempfile.mkdtemp(prefix="authsvc-soak-"))
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_hex(32),  # one key for every instance
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "FIRST_SUPERUSER_EMAIL": ADMIN_EMAIL,
        "FIRST_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
        "BCRYPT_ROUNDS": str(args.bcrypt_rounds),
        "PUBLIC_URL": "https://auth.soak.example",  # production refuses localhost links
        "FRONTEND_URL": "https://app.soak.example",
        "METRICS_TOKEN": secrets.token_hex(16),
        "RATE_LIMIT_LOGIN": "1000000/minute",  # the soak is about data, not limits,
        "RATE_LIMIT_LOGIN_IP": "1000000/minute",  # but the counts still go through Redis
        "RATE_LIMIT_REGISTER": "1000000/hour",
        "MAX_FAILED_LOGINS": "1000000",
        "REFRESH_REUSE_GRACE_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    print(
        f"soak: {args.seconds:.0f} s, {args.clients} clients + 1 admin, 2 instances x "
        f"{args.workers} workers, seed {seed}\n  database {make_url(database_url).database}, "
        f"redis {args.redis_url}, logs in {log_dir}"
    )
    tally = Tally()
    with instances(env, args.workers, log_dir) as bases:
        print(f"  instances: {', '.join(bases)}")
        started = time.monotonic()
        deadline = started + args.seconds
        clients = [Client(bases, deadline, seed + i + 1) for i in range(args.clients)]
        admin = Admin(bases, deadline, clients)
        threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
        threads.append(threading.Thread(target=admin.run, daemon=True))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(args.seconds + 4 * REQUEST_TIMEOUT_S)
        elapsed = time.monotonic() - started
        stuck = sum(thread.is_alive() for thread in threads)
        for client in [*clients, admin.client]:
            tally.merge(client.tally)
            client.close()
        if stuck:
            tally.errors[f"{stuck} client threads did not finish"] += 1
    checks = check_database(database_url, tally, clients, admin)
    logs = "".join(p.read_text(errors="replace") for p in sorted(log_dir.glob("*.log")))
    logs_clean = Check(
        "no traceback in the instances' logs",
        "Traceback" not in logs,
        f"{len(logs.splitlines())} log lines",
    )
    return 0 if report(tally, checks, elapsed, logs_clean) else 1


if __name__ == "__main__":
    sys.exit(main())
