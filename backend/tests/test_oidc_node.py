"""openid-client (Node), a standard client, against a live server: discovery,
client_credentials, introspection, refresh, revocation and the end-session URL
(tests/node/services.mjs). Runs with the browser tests (`pytest -m browser`; .ci/browser
installs the pinned package with npm ci)."""

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from sqlmodel import Session

from app.models.user import User
from tests.utils import PASSWORD
from tests.utils.oidc import make_client, redirect_params, sign_in
from tests.utils.server import running_server

pytestmark = pytest.mark.browser
NODE_DIR = Path(__file__).resolve().parent / "node"
AFTER_LOGOUT = "http://127.0.0.1:5000/signed-out"


def test_openid_client_fetches_introspects_refreshes_and_revokes(db: Session, user: User) -> None:
    node = shutil.which("node")
    assert node, "node is required (see .ci/browser)"
    assert (NODE_DIR / "node_modules" / "openid-client").is_dir(), (
        "run: npm ci --prefix backend/tests/node"
    )
    worker = make_client(db, name="Worker", redirect_uris=[], grant_types=["client_credentials"])
    api = make_client(db, name="Orders API", redirect_uris=[], grant_types=["client_credentials"])
    app = make_client(
        db,
        redirect_uris=["http://127.0.0.1:5000/callback"],
        post_logout_redirect_uris=[AFTER_LOGOUT],
        first_party=True,
    )
    env = {
        "ENVIRONMENT": "development",  # http on loopback: cookies without Secure
        "PUBLIC_URL": "http://127.0.0.1:{port}",
        "RATE_LIMIT_ENABLED": "false",
    }
    with running_server(env) as base:
        oauth = OAuth2Client(
            app.client_id,
            app.client_secret,
            redirect_uri=app.redirect_uris[0],
            scope="openid offline_access",
            code_challenge_method="S256",
        )
        verifier = "v" * 64
        url, _ = oauth.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
        with httpx.Client(base_url=base) as browser:
            answer = sign_in(browser, url, user.email, PASSWORD)
        assert redirect_params(answer)["code"]
        tokens = oauth.fetch_token(
            f"{base}/oauth/token",
            authorization_response=answer.headers["location"],
            code_verifier=verifier,
        )
        run = subprocess.run(
            [node, str(NODE_DIR / "services.mjs")],
            env={
                **os.environ,
                "ISSUER": base,
                "WORKER_ID": worker.client_id,
                "WORKER_SECRET": str(worker.client_secret),
                "API_ID": api.client_id,
                "API_SECRET": str(api.client_secret),
                "APP_ID": app.client_id,
                "APP_SECRET": str(app.client_secret),
                "REFRESH_TOKEN": tokens["refresh_token"],
                "AFTER_LOGOUT": AFTER_LOGOUT,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["issued"] == {"token_type": "bearer", "scope": "roles", "refresh": None}
    assert result["workerToken"]["active"] is True
    assert result["workerToken"]["sub"] == worker.client_id
    assert result["userToken"]["active"] is True and result["userToken"]["sub"] == str(user.id)
    assert result["afterRevocation"] == {"active": False}
    assert result["workerAfter"] == {"active": False}
    logout = urlsplit(result["logout"])
    assert f"{logout.scheme}://{logout.netloc}{logout.path}" == f"{base}/oauth/logout"
    assert parse_qs(logout.query)["post_logout_redirect_uri"] == [AFTER_LOGOUT]
