"""idpyoidc (IdentityPython's relying party), which refused the provider while discovery
lacked RS256 (issue 20 item 1): its RPHandler, configured with nothing but the issuer and
the client's registration, discovers the provider, sends the user through the hosted
login page, exchanges the code and verifies the RS256 ID token against the JWKS, then
reads userinfo. PKCE is switched on (its add-on) because the service requires it of every
client until `require_pkce` lands (issue 20 item 2)."""

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
OIDC = "idpyoidc.client.oidc"
SERVICES = {  # its default OIDC services, named as its discovery step looks them up
    "provider_info": {"class": f"{OIDC}.provider_info_discovery.ProviderInfoDiscovery"},
    "authorization": {"class": f"{OIDC}.authorization.Authorization"},
    "access_token": {"class": f"{OIDC}.access_token.AccessToken"},
    "userinfo": {"class": f"{OIDC}.userinfo.UserInfo"},
}
PKCE = {
    "pkce": {
        "function": "idpyoidc.client.oauth2.add_on.pkce.add_support",
        "kwargs": {"code_challenge_length": 64, "code_challenge_method": "S256"},
    }
}


def test_idpyoidc_completes_a_code_flow_with_discovery(
    db: Session, user: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the RP writes its own JWKS to static/jwks.json there
    registered = make_client(db, redirect_uris=[CALLBACK], first_party=True)
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
                "services": SERVICES,
                "add_ons": PKCE,
            }
        }
        handler = RPHandler(base_url="http://127.0.0.1:5000", client_configs=config)
        url = handler.begin(issuer_id="op")  # discovery happens here
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
