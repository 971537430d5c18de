"""The OpenID Foundation conformance suite's rules (Basic OP, Config OP, RP-Initiated Logout),
one test per module, named after it: what each module asserts of the provider, checked here
with an independent client (Authlib) and PyJWT.

The modules of the plans not listed here are covered by the flow, token, logout and discovery
tests of the other files; docs/ lists each module and where it is checked."""

from collections.abc import Callable
from urllib.parse import urlencode

import jwt as pyjwt
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.models.user import User
from tests.utils import PASSWORD
from tests.utils.oidc import (
    AUTHORIZE,
    ISSUER,
    REDIRECT_URI,
    USERINFO,
    browser,
    exchange,
    make_client,
    oauth_client,
    redirect_params,
    sign_in,
    start,
)


@pytest.fixture(autouse=True)
def issuer(settings: Callable[..., Settings]) -> None:
    settings(PUBLIC_URL=ISSUER)


def _authorize(client_id: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": "st",
        "nonce": "n-0S6_WzA2Mj",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        **extra,
    }
    return f"{AUTHORIZE}?{urlencode(params)}"


def _tokens(client: TestClient, db: Session, user: User, scope: str) -> dict[str, str]:
    registered = make_client(db, first_party=True)
    started = start(oauth_client(client, registered, scope=scope))
    code = redirect_params(sign_in(browser(client), started.url, user.email, PASSWORD))["code"]
    response = exchange(client, registered, code, started.verifier)
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- oidcc-unsupported / request parameters (OIDC Core §6, §7.2.1) -------------------------


@pytest.mark.parametrize(
    ("parameter", "error"),
    [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
        ("registration", "registration_not_supported"),
    ],
    ids=[
        "oidcc-ensure-request-object-with-redirect-uri",
        "oidcc-request-uri-unsigned",
        "oidcc-registration-parameter",
    ],
)
def test_oidcc_unsupported_request_parameters_answer_their_oidc_error(
    client: TestClient, db: Session, parameter: str, error: str
) -> None:
    registered = make_client(db)
    value = "https://rp.example.com/request.jwt" if parameter == "request_uri" else "e30.e30."
    params = redirect_params(
        browser(client).get(_authorize(registered.client_id, **{parameter: value}))
    )
    assert params["error"] == error
    assert params["state"] == "st" and params["iss"] == ISSUER


def test_oidcc_discovery_says_no_claims_request_or_request_objects(client: TestClient) -> None:
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["claims_parameter_supported"] is False
    assert metadata["request_parameter_supported"] is False
    assert metadata["request_uri_parameter_supported"] is False


# --- oidcc-scope-profile: claims with no value are omitted, never null ---------------------


def test_oidcc_scope_profile_omits_claims_without_a_value(
    client: TestClient, db: Session, user: User
) -> None:
    assert user.full_name is None
    tokens = _tokens(client, db, user, "openid profile email")
    claims = pyjwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert "name" not in claims and isinstance(claims["updated_at"], int)
    assert None not in claims.values()
    info = client.get(USERINFO, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200
    assert "name" not in info.json() and None not in info.json().values()


def test_oidcc_scope_profile_gives_the_name_when_there_is_one(
    client: TestClient, db: Session, user_factory: Callable[..., User]
) -> None:
    named = user_factory(full_name="Ada Lovelace")
    tokens = _tokens(client, db, named, "openid profile")
    info = client.get(USERINFO, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.json()["name"] == "Ada Lovelace"


# --- oidcc-userinfo-post-body: the access token in a form body (RFC 6750 §2.2) -------------


def test_oidcc_userinfo_post_body(client: TestClient, db: Session, user: User) -> None:
    tokens = _tokens(client, db, user, "openid email")
    info = client.post(USERINFO, data={"access_token": tokens["access_token"]})
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == str(user.id) and info.json()["email"] == user.email


def test_oidcc_userinfo_post_header(client: TestClient, db: Session, user: User) -> None:
    tokens = _tokens(client, db, user, "openid email")
    info = client.post(USERINFO, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200 and info.json()["sub"] == str(user.id)


def test_userinfo_refuses_a_token_sent_two_ways_or_a_bad_one_in_the_body(
    client: TestClient, db: Session, user: User
) -> None:
    token = _tokens(client, db, user, "openid")["access_token"]
    both = client.post(
        USERINFO, data={"access_token": token}, headers={"Authorization": f"Bearer {token}"}
    )
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    twice = client.post(
        USERINFO,
        content=urlencode([("access_token", token), ("access_token", token)]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert twice.status_code == 400
    bad = client.post(USERINFO, data={"access_token": token[:-4] + "AAAA"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    nul = client.post(USERINFO, data={"access_token": "a\x00b"})
    assert nul.status_code == 401
