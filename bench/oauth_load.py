#!/usr/bin/env python3
"""The OAuth loads of the benchmark: the token endpoint (authorization-code exchange and
client_credentials) and introspection. bench/run.py measures them in its run, beside the
bare endpoint; alone, for a short check that they run:

    python bench/oauth_load.py --seconds 2          # SQLite in a temporary directory

client_credentials and introspection repeat one request, so wrk sends them. A code is
single-use: codes are minted first (single sign-on, no bcrypt: one browser session asks
the authorization endpoint again and again), then exchanged by `connections` threads here,
each code once, with the server's CPU read as for wrk's loads.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REDIRECT_URI = "http://127.0.0.1/bench-callback"
CODES_PER_SECOND = 400  # minted per second of exchange load: more than one worker answers
CODE_LIFETIME_S = 50  # a code lives 60 s: exchange them all well within that
KEYS = ("oauth_code", "oauth_client_credentials", "oauth_introspect")


@dataclass
class Browser:
    """A keep-alive connection with a cookie jar (the hosted pages' session and CSRF)."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def send(
        self, method: str, path: str, *, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = urllib.parse.urlencode(form) if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # the server closed the idle keep-alive connection (uvicorn: after 5 s): reconnect
            self.conn.close()
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        text = response.read().decode()
        for value in response.headers.get_all("set-cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, {k.lower(): v for k, v in response.getheaders()}, text


def _json(port: int, method: str, path: str, token: str, body: dict[str, Any]) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status >= 300:
        sys.exit(f"{method} {path} answered {response.status}: {data[:300]!r}")
    return json.loads(data)


def _form(port: int, path: str, form: dict[str, str], auth: tuple[str, str]) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    headers = {
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    conn.request("POST", path, body=urllib.parse.urlencode(form), headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status != 200:
        sys.exit(f"POST {path} answered {response.status}: {data[:300]!r}")
    return json.loads(data)


@dataclass
class Clients:
    web: dict[str, Any]
    service: dict[str, Any]
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def authorize_path(self) -> str:
        return self.authorize_with()

    def authorize_with(self, **params: str) -> str:
        """An authorization request of the web client (PKCE), `params` added or replaced."""
        digest = hashlib.sha256(self.verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.web["client_id"],
                "redirect_uri": REDIRECT_URI,
                "scope": "openid",
                "state": "bench",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                **params,
            }
        )
        return f"/oauth/authorize?{query}"


def register(port: int, admin_token: str, api: str) -> Clients:
    web = _json(port, "POST", f"{api}/clients", admin_token, {
        "name": "bench web app", "redirect_uris": [REDIRECT_URI], "first_party": True,
        "grant_types": ["authorization_code"], "scopes": ["openid"],
    })  # fmt: skip
    service = _json(port, "POST", f"{api}/clients", admin_token, {
        "name": "bench job", "grant_types": ["client_credentials"], "scopes": ["roles"],
    })  # fmt: skip
    return Clients(web=web, service=service)


def _code(location: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]


def sign_in(
    port: int, clients: Clients, email: str, password: str, path: str | None = None
) -> Browser:
    """One login on the hosted page (the authorization request `path`, by default
    clients.authorize_path): the browser then holds a session for single sign-on."""
    browser = Browser(port)
    status, _, page = browser.send("GET", path or clients.authorize_path)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    if status != 200 or "csrf_token" not in fields:
        sys.exit(f"the authorization endpoint answered {status} without a login form")
    form = {k: unescape(v) for k, v in fields.items()} | {"email": email, "password": password}
    status, headers, _ = browser.send("POST", "/oauth/authorize/login", form=form)
    if status != 303 or "code=" not in headers.get("location", ""):
        sys.exit(f"the hosted login answered {status}, not a redirect with a code")
    return browser


def mint_codes(browser: Browser, clients: Clients, count: int) -> list[str]:
    codes = []
    for _ in range(count):
        status, headers, _ = browser.send("GET", clients.authorize_path)
        if status != 302:
            sys.exit(f"single sign-on answered {status}, not a redirect with a code")
        codes.append(_code(headers["location"]))
    return codes


def exchange_load(
    bench: Any, port: int, pid: int, clients: Clients, codes: list[str], *, connections: int,
    seconds: float,
) -> Any:  # fmt: skip
    """Exchange each code once from `connections` keep-alive threads: a Load like wrk's."""
    load = bench.Load("POST /oauth/token, authorization_code", connections)
    secret = clients.web["client_secret"]
    basic = base64.b64encode(f"{clients.web['client_id']}:{secret}".encode()).decode()
    headers = {
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + seconds

    def work() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.perf_counter() < deadline:
            with lock:
                if not codes:
                    break
                code = codes.pop()
            body = urllib.parse.urlencode({
                "grant_type": "authorization_code", "code": code,
                "redirect_uri": REDIRECT_URI, "code_verifier": clients.verifier,
            })  # fmt: skip
            began = time.perf_counter()
            conn.request("POST", "/oauth/token", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
                errors[0] += response.status != 200
        conn.close()

    busy, before, own, database = (
        bench.busy_seconds(), bench.cpu_seconds(pid), bench.own_seconds(), bench.database_cpu()
    )  # fmt: skip
    began = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - began
    load.requests, load.errors = len(latencies), errors[0]
    if latencies:
        ordered = sorted(latencies)
        load.p50_ms = statistics.median(ordered) * 1000
        load.p99_ms = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    spent = bench.cpu_seconds(pid) - before
    database = bench.database_seconds(database)
    load.cpu_us = spent / load.requests * 1e6 if load.requests else None
    load.database_cpu_us = database / load.requests * 1e6 if load.requests else None
    other = bench.busy_seconds() - busy - spent - database - (bench.own_seconds() - own)
    load.background = max(0.0, other / load.seconds) if load.seconds else None
    load.extra["codes_left"] = len(codes)
    return load


def measure_client_credentials(
    measure: Callable[..., Any], clients: Clients, *, port: int, connections: int, seconds: float
) -> Any:
    """POST /oauth/token, client_credentials (client_secret_post), by wrk."""
    service = clients.service
    return measure(
        "oauth_client_credentials",
        "POST /oauth/token, client_credentials",
        f"http://127.0.0.1:{port}/oauth/token",
        connections=connections,
        seconds=seconds,
        method="POST",
        body=urllib.parse.urlencode({"grant_type": "client_credentials",
                                     "client_id": service["client_id"],
                                     "client_secret": service["client_secret"]}),
    )  # fmt: skip


def measure_oauth(
    bench: Any,
    measure: Callable[..., Any],
    loads: dict[str, Any],
    *,
    port: int,
    pid: int,
    admin_token: str,
    email: str,
    connections: int,
    seconds: float,
) -> None:
    """The three OAuth loads, into `loads` under KEYS (measure: run.py's, for wrk loads)."""
    base = f"http://127.0.0.1:{port}"
    clients = register(port, admin_token, bench.API)
    browser = sign_in(port, clients, email, bench.PASSWORD)
    service = (clients.service["client_id"], clients.service["client_secret"])
    form = urllib.parse.urlencode
    measure_client_credentials(measure, clients, port=port, connections=connections,
                               seconds=seconds)  # fmt: skip
    [code] = mint_codes(browser, clients, 1)
    user_token = _form(port, "/oauth/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": clients.verifier,
    }, (clients.web["client_id"], clients.web["client_secret"]))["access_token"]  # fmt: skip
    measure(
        "oauth_introspect",
        "POST /oauth/introspect, a user's access token",
        f"{base}/oauth/introspect",
        connections=connections,
        seconds=seconds,
        method="POST",
        body=form({"token": user_token, "client_id": service[0], "client_secret": service[1]}),
    )
    exchange_seconds = min(seconds, CODE_LIFETIME_S / 2)
    print(f"  minting {round(CODES_PER_SECOND * exchange_seconds)} codes", flush=True)
    codes = mint_codes(browser, clients, round(CODES_PER_SECOND * exchange_seconds))
    print("  POST /oauth/token, authorization_code", flush=True)
    loads["oauth_code"] = exchange_load(
        bench, port, pid, clients, codes, connections=connections, seconds=exchange_seconds
    )


def main() -> None:
    """Only the OAuth loads, on a fresh SQLite service: a check that they run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH))
    import run as bench

    wrk = bench.Wrk(bench.ensure_wrk(), 1)
    workdir = Path(tempfile.mkdtemp(prefix="authsvc-oauth-bench-"))
    url = f"sqlite:///{workdir}/bench.db"
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "DATABASE_URL": url,
        "SECRET_KEY": secrets.token_hex(32),
        "SECRET_KEY_FILE": str(workdir / ".secret_key"),
        "FIRST_SUPERUSER_EMAIL": bench.ADMIN_EMAIL,
        "FIRST_SUPERUSER_PASSWORD": bench.PASSWORD,
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_ENABLED": "false",
    }
    for name in ("REDIS_URL", "PASSWORD_HASH_WORKERS", "LOG_LEVEL", "LOG_FORMAT", "ACCESS_LOG"):
        env.pop(name, None)
    subprocess.run([*bench.MANAGE, "migrate"], env=env, check=True)  # noqa: S603
    bench.seed_users(url, start=0, stop=2, rounds=4)
    port = bench.free_port()
    serve = [*bench.MANAGE, "serve", "--port", str(port)]
    loads: dict[str, Any] = {}
    with bench.server(serve, env, workdir / "server.log", port, "/health") as pid:

        def measure(key: str, name: str, target: str, **kwargs: Any) -> Any:
            print(f"  {name}", flush=True)
            loads[key] = wrk.run(name, target, pid=pid, **kwargs)
            return loads[key]

        admin_token = bench.login(port, bench.ADMIN_EMAIL)
        measure_oauth(
            bench, measure, loads, port=port, pid=pid, admin_token=admin_token,
            email=f"user1@{bench.DOMAIN}", connections=args.connections, seconds=args.seconds,
        )  # fmt: skip
    shutil.rmtree(workdir, ignore_errors=True)
    print("\n| load | connections | requests/s | p50 ms | p99 ms | server CPU µs/req | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key in KEYS:
        load = loads[key]
        print(
            f"| {load.name} | {load.connections} | {bench.fmt(load.rps)} "
            f"| {bench.fmt(load.p50_ms, 2)} | {bench.fmt(load.p99_ms, 2)} "
            f"| {bench.fmt(load.cpu_us)} | {load.errors} |"
        )
    if any(loads[key].errors for key in KEYS):
        sys.exit("some OAuth requests failed")


if __name__ == "__main__":
    main()
