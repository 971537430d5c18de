"""idpyoidc (IdentityPython's relying party), which refused the provider while discovery
lacked RS256 (issue 20 item 1), in its default configuration: its RPHandler, given nothing
but the issuer and the client's registration (no services, no add-ons), discovers the
provider, sends the user through the hosted login page, exchanges the code and verifies the
RS256 ID token against the JWKS, then reads userinfo. It sends no PKCE by default, as the
OpenID Basic OP plan does not: the client is confidential and registered with
`require_pkce: false` (issue 20 item 2), and the service asks a `nonce` instead, which
idpyoidc sends."""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from idpyoidc.client.rp_handler import RPHandler
from sqlmodel import Session

from app.models.user import User
from tests.utils import PASSWORD
from tests.utils.oidc import make_client, sign_in
from tests.utils.server import running_server

CALLBACK = "http://127.0.0.1:5000/callback"


def test_idpyoidc_completes_a_code_flow_with_discovery(
    db: Session, user: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the RP writes its own JWKS to static/jwks.json there
    registered = make_client(db, redirect_uris=[CALLBACK], first_party=True, require_pkce=False)
    env = {
        "ENVIRONMENT": "development",
        "PUBLIC_URL": "http://127.0.0.1:{port}",
        "RATE_LIMIT_ENABLED": "false",
    }
    with running_server(env) as base:
        config = {
            "op": {
                "issuer": base,
                "client_id": registered.client_id,
                "client_secret": registered.client_secret,
                "redirect_uris": [CALLBACK],
                "client_type": "oidc",
            }
        }
        handler = RPHandler(base_url="http://127.0.0.1:5000", client_configs=config)
        url = handler.begin(issuer_id="op")  # discovery happens here
        asked = parse_qs(urlsplit(url).query)
        assert "nonce" in asked and "code_challenge" not in asked  # its defaults
        with httpx.Client(base_url=base) as browser:
            answer = sign_in(browser, url, user.email, PASSWORD)
        assert answer.status_code in (302, 303), answer.text
        response = {
            k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()
        }
        result = handler.finalize(base, response)
    assert result["state"] == response["state"]
    assert result["id_token"]["sub"] == str(user.id)
    assert result["userinfo"]["sub"] == str(user.id)
    assert result["token"]
    assert (tmp_path / "static" / "jwks.json").exists()  # not in the repository
