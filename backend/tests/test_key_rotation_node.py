"""Key rotation as openid-client and oauth4webapi (Node) see it (issue 20 item 3): both
libraries complete sign-ins (PKCE, nonce, the ID token's signature verified against the
JWKS each caches) without a single failure while `manage keys rotate` stages a key that
then starts signing, and an access token issued before the rotation still works at userinfo
and introspection after it. tests/node/rotation.mjs is the relying party; this test is its
browser (the hosted login page) and the operator. PyJWKClient's part is in
test_key_rotation_live.py. Runs with the browser tests (`pytest -m browser`; .ci/browser
installs the pinned packages with npm ci)."""

import json
import os
import shutil
import subprocess
import time
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from app.models.client import ClientCreated
from app.models.user import User
from tests.test_key_rotation_live import SERVICE, introspected, kid_of, manage_rotate
from tests.test_oidc_node import NODE_DIR
from tests.utils import PASSWORD
from tests.utils.oidc import is_login_page, make_client, submit_login
from tests.utils.server import running_server

pytestmark = pytest.mark.browser
CALLBACK = "http://127.0.0.1:5000/callback"
LIBRARIES = ("openid-client", "oauth4webapi")
# Both libraries keep a JWKS 300 s and refetch it for an unknown kid once it is 60 s old.
# The Node process's clock runs CLOCK_SPEED times as fast as ours, so that a key staged
# AHEAD_S of our seconds ahead is published AHEAD_S * CLOCK_SPEED seconds of theirs before
# it signs: 240 s, more than the 60 s refetch floor plus the up to KEY_SET_MAX_AGE_S (5 s,
# 150 s of theirs) a running server takes to read the staged key. With real clocks that
# needs KEY_PUBLISH_AHEAD_SECONDS over a minute (the default is an hour).
AHEAD_S = 8
CLOCK_SPEED = 30
ENOUGH = 3  # sign-ins per library verified with the new key before the test stops


class RelyingParty:
    """rotation.mjs, one sign-in at a time: it hands out an authorization URL, this test
    signs in through the hosted page and hands back the callback URL."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"rotation.mjs ended: {self.stderr()}"
        return dict(json.loads(line))

    def write(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n")
        self.process.stdin.flush()

    def stderr(self) -> str:
        self.process.wait(timeout=10)
        assert self.process.stderr is not None
        return self.process.stderr.read()


def sign_in(rp: RelyingParty, browser: httpx.Client, email: str) -> dict[str, Any]:
    asked = rp.read()
    page = browser.get(asked["url"])
    answer = submit_login(browser, page, email, PASSWORD) if is_login_page(page) else page
    assert answer.status_code in (302, 303), answer.text
    assert answer.headers["location"].startswith(CALLBACK)
    rp.write(answer.headers["location"])
    return {**rp.read(), "lib": asked["lib"]}


def userinfo(base: str, token: str) -> httpx.Response:
    return httpx.get(
        f"{base}/oauth/userinfo", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_openid_client_and_oauth4webapi_sign_in_across_a_rotation(db: Session, user: User) -> None:
    node = shutil.which("node")
    assert node, "node is required (see .ci/browser)"
    for package in LIBRARIES:
        assert (NODE_DIR / "node_modules" / package).is_dir(), (
            "run: npm ci --prefix backend/tests/node"
        )
    app: ClientCreated = make_client(db, redirect_uris=[CALLBACK], first_party=True)
    resource = make_client(db, name="Orders API", **SERVICE)
    env = {
        "ENVIRONMENT": "development",  # http on loopback: cookies without Secure
        "PUBLIC_URL": "http://127.0.0.1:{port}",
        "RATE_LIMIT_ENABLED": "false",
    }
    seen: dict[str, dict[str, int]] = {lib: {} for lib in LIBRARIES}
    with running_server(env) as base, httpx.Client(base_url=base) as browser:
        process = subprocess.Popen(
            [node, str(NODE_DIR / "rotation.mjs")],
            env={
                **os.environ,
                "ISSUER": base,
                "CLIENT_ID": app.client_id,
                "CLIENT_SECRET": str(app.client_secret),
                "REDIRECT_URI": CALLBACK,
                "CLOCK_SPEED": str(CLOCK_SPEED),
                "CLOCK_TOLERANCE": "3600",  # the run lasts ~20 min of its clock
            },
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        rp = RelyingParty(process)
        try:

            def once() -> dict[str, Any]:
                done = sign_in(rp, browser, user.email)
                assert done["ok"], done  # the first failure ends the run
                kids = seen[done["lib"]]
                kids[done["kid"]] = kids.get(done["kid"], 0) + 1
                return done

            before = [once() for _ in range(4)]  # both libraries have fetched the JWKS
            old = before[0]["kid"]
            old_access = before[0]["access_token"]
            new = manage_rotate(ahead=AHEAD_S)["RS256"]
            deadline = time.monotonic() + AHEAD_S + 15
            while any(seen[lib].get(new, 0) < ENOUGH for lib in LIBRARIES):
                assert time.monotonic() < deadline, ("new key never signed", new, seen)
                once()
            rp.write("quit")
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 0, rp.stderr()

        # The access token from before the rotation, signed by the now retired key.
        assert kid_of(old_access) == old != new
        answer = userinfo(base, old_access)
        assert answer.status_code == 200, answer.text
        assert answer.json()["sub"] == str(user.id)
        assert introspected(base, resource, old_access) is True
    for lib in LIBRARIES:  # the old key, then the new one, and nothing failed between
        assert set(seen[lib]) == {old, new}, seen
