"""The OpenID Foundation conformance suite's rules (Basic OP, Config OP, RP-Initiated Logout),
one test per module, named after it: what each module asserts of the provider, checked here
with an independent client (Authlib) and PyJWT.

The modules of the plans not listed here are covered by the flow, token, logout and discovery
tests of the other files; docs/ lists each module and where it is checked."""

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt as pyjwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import Session

from app.core.config import Settings
from app.core.security import token_digest
from app.db import get_engine
from app.models.client import AuthorizationCode, ClientCreated, OAuthClient
from app.models.user import User
from tests.test_mfa import code_at, enable_totp
from tests.test_oidc_flow import validate_id_token
from tests.utils import PASSWORD
from tests.utils.oidc import (
    AUTHORIZE,
    ISSUER,
    REDIRECT_URI,
    TOKEN,
    USERINFO,
    browser,
    exchange,
    form_fields,
    get_code,
    is_login_page,
    make_client,
    oauth_client,
    redirect_params,
    sign_in,
    start,
    submit,
    submit_login,
)


@pytest.fixture(autouse=True)
def issuer(settings: Callable[..., Settings]) -> None:
    settings(PUBLIC_URL=ISSUER)


def _authorize(client_id: str, **extra: str | None) -> str:
    """An authorization request URL; an `extra` of None leaves that parameter out."""
    params: dict[str, str | None] = {
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
    return f"{AUTHORIZE}?{urlencode({k: v for k, v in params.items() if v is not None})}"


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


# --- the Basic OP plan without PKCE: a confidential client registered with require_pkce false


def _basic_rp(client: TestClient, registered: ClientCreated) -> OAuth2Client:
    """Authlib as the suite's Basic OP plan runs: client_secret_basic, no PKCE."""
    return OAuth2Client(
        client_id=registered.client_id,
        client_secret=registered.client_secret,
        token_endpoint_auth_method="client_secret_basic",
        redirect_uri=REDIRECT_URI,
        scope="openid email",
        transport=client._transport,
    )


def test_oidcc_server_without_pkce_for_a_client_registered_without_it(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=True, require_pkce=False)
    rp = _basic_rp(client, registered)
    url, _ = rp.create_authorization_url(AUTHORIZE, nonce="n-0S6_WzA2Mj", state="st")
    assert "code_challenge" not in url
    answer = sign_in(browser(client), url, user.email, PASSWORD)
    assert "code" in redirect_params(answer), answer.headers.get("location")
    tokens = rp.fetch_token(TOKEN, authorization_response=answer.headers["location"])
    claims = validate_id_token(client, tokens["id_token"], audience=registered.client_id)
    assert claims["nonce"] == "n-0S6_WzA2Mj" and claims["sub"] == str(user.id)
    info = client.get(USERINFO, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200 and info.json()["email"] == user.email


def test_a_code_verifier_for_a_code_issued_without_a_challenge_is_invalid_grant(
    client: TestClient, db: Session, user: User
) -> None:
    """The PKCE downgrade (RFC 9700 §2.1.1): a verifier for a code that binds none."""
    registered = make_client(db, first_party=True, require_pkce=False)
    url = _authorize(registered.client_id, code_challenge=None, code_challenge_method=None)
    code = redirect_params(sign_in(browser(client), url, user.email, PASSWORD))["code"]
    refused = exchange(client, registered, code, "v" * 43)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_a_client_without_require_pkce_that_sends_a_challenge_is_held_to_it(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=True, require_pkce=False)
    code, started = get_code(client, registered, user)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    auth = (registered.client_id, str(registered.client_secret))
    missing = client.post(TOKEN, data=form, auth=auth)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_grant"
    assert exchange(client, registered, code, started.verifier).status_code == 200


NO_PKCE = {"code_challenge": None, "code_challenge_method": None}


@pytest.mark.parametrize(
    "extra",
    [{**NO_PKCE, "scope": "email"}, {"code_challenge_method": None}],
    ids=["no-openid", "challenge-without-s256"],
)
def test_without_pkce_a_request_needs_openid(
    client: TestClient, db: Session, extra: dict[str, str | None]
) -> None:
    registered = make_client(db, require_pkce=False)
    assert is_login_page(browser(client).get(_authorize(registered.client_id, **NO_PKCE)))
    params = redirect_params(browser(client).get(_authorize(registered.client_id, **extra)))
    assert params["error"] == "invalid_request" and params["state"] == "st"


def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(
    client: TestClient, db: Session, user: User
) -> None:
    """The Basic OP plan's client: confidential, no PKCE, and here no nonce either."""
    registered = make_client(db, require_pkce=False, first_party=True)
    url = _authorize(registered.client_id, **NO_PKCE, nonce=None)
    code = redirect_params(sign_in(browser(client), url, user.email, PASSWORD))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    auth = (registered.client_id, str(registered.client_secret))
    tokens = client.post(TOKEN, data=form, auth=auth)
    assert tokens.status_code == 200, tokens.text
    claims = pyjwt.decode(tokens.json()["id_token"], options={"verify_signature": False})
    assert "nonce" not in claims and claims["sub"] == str(user.id)


def test_a_public_client_needs_pkce_whatever_its_row_says(client: TestClient, db: Session) -> None:
    registered = make_client(db, public=True)
    with Session(get_engine()) as session:
        row = session.get(OAuthClient, registered.client_id)
        assert row is not None
        row.require_pkce = False  # registration refuses it; the endpoint does not trust it
        session.add(row)
        session.commit()
    params = redirect_params(browser(client).get(_authorize(registered.client_id, **NO_PKCE)))
    assert params["error"] == "invalid_request"


def test_a_public_client_cannot_be_registered_without_pkce(db: Session) -> None:
    with pytest.raises(ValidationError, match="PKCE"):
        make_client(db, public=True, require_pkce=False)


# --- prompt=select_account (OIDC Core §3.1.2.1) ---------------------------------------------


def _signed_in(client: TestClient, db: Session, user: User) -> tuple[httpx.Client, str, str]:
    """A browser signed in as `user` through a first-party client; the browser, the
    client's id and the ID token of that sign-in."""
    registered = make_client(db, first_party=True)
    b = browser(client)
    started = start(oauth_client(client, registered, scope="openid"))
    code = redirect_params(sign_in(b, started.url, user.email, PASSWORD))["code"]
    tokens = exchange(client, registered, code, started.verifier).json()
    return b, registered.client_id, tokens["id_token"]


def _code_user(client: TestClient, db: Session, code: str) -> str:
    with Session(get_engine()) as session:
        row = session.get(AuthorizationCode, token_digest(code))
        assert row is not None
        return str(row.user_id)


def test_oidcc_prompt_select_account_shows_the_signed_in_account(
    client: TestClient, db: Session, user: User
) -> None:
    b, client_id, _ = _signed_in(client, db, user)
    page = b.get(_authorize(client_id, prompt="select_account"))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert f"Continue as {user.email}" in page.text
    assert '<button type="submit" name="action" value="continue">' in page.text
    assert 'name="action" value="another"' in page.text
    assert form_fields(page.text)["csrf_token"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

    went_on = submit(b, page, "/oauth/authorize/account", action="continue")
    params = redirect_params(went_on)
    assert params["state"] == "st" and _code_user(client, db, params["code"]) == str(user.id)


def test_select_account_use_another_account_signs_in_someone_else(
    client: TestClient, db: Session, user: User, user_factory: Callable[..., User]
) -> None:
    other = user_factory(email="other@example.com")
    b, client_id, _ = _signed_in(client, db, user)
    page = b.get(_authorize(client_id, prompt="select_account"))
    login_page = submit(b, page, "/oauth/authorize/account", action="another")
    assert is_login_page(login_page) and user.email not in login_page.text
    params = redirect_params(submit_login(b, login_page, other.email, PASSWORD))
    assert _code_user(client, db, params["code"]) == str(other.id)
    # the new login replaced the browser's session: SSO now answers for `other`
    again = redirect_params(b.get(_authorize(client_id)))
    assert _code_user(client, db, again["code"]) == str(other.id)


def test_select_account_form_needs_its_csrf_token(
    client: TestClient, db: Session, user: User
) -> None:
    b, client_id, _ = _signed_in(client, db, user)
    page = b.get(_authorize(client_id, prompt="select_account"))
    fields = {**form_fields(page.text), "csrf_token": "forged", "action": "continue"}
    refused = b.post("/oauth/authorize/account", data=fields)
    assert refused.status_code == 403 and "location" not in refused.headers


def test_select_account_without_a_session_shows_the_login_page(
    client: TestClient, db: Session
) -> None:
    registered = make_client(db, first_party=True)
    page = browser(client).get(_authorize(registered.client_id, prompt="select_account"))
    assert page.status_code == 200 and is_login_page(page)


def test_oidcc_prompt_none_select_account_is_account_selection_required(
    client: TestClient, db: Session, user: User
) -> None:
    b, client_id, _ = _signed_in(client, db, user)
    params = redirect_params(b.get(_authorize(client_id, prompt="none select_account")))
    assert params["error"] == "account_selection_required"
    assert params["state"] == "st" and "code" not in params
    alone = redirect_params(
        browser(client).get(_authorize(client_id, prompt="none select_account"))
    )
    assert alone["error"] == "login_required"


# --- id_token_hint (oidcc-id-token-hint; OIDC Core §3.1.2.1) ----------------------------------


def test_oidcc_id_token_hint_of_the_signed_in_user_with_prompt_none(
    client: TestClient, db: Session, user: User
) -> None:
    b, client_id, id_token = _signed_in(client, db, user)
    params = redirect_params(b.get(_authorize(client_id, prompt="none", id_token_hint=id_token)))
    assert _code_user(client, db, params["code"]) == str(user.id)


def test_an_id_token_hint_for_another_user_with_prompt_none_is_login_required(
    client: TestClient, db: Session, user: User, user_factory: Callable[..., User]
) -> None:
    _, client_id, other_token = _signed_in(client, db, user_factory(email="other@example.com"))
    b, _, _ = _signed_in(client, db, user)
    params = redirect_params(b.get(_authorize(client_id, prompt="none", id_token_hint=other_token)))
    assert params["error"] == "login_required" and "code" not in params

    page = b.get(_authorize(client_id, id_token_hint=other_token))
    assert page.status_code == 200 and is_login_page(page)


def test_an_id_token_hint_that_is_not_an_id_token_of_this_issuer_is_invalid_request(
    client: TestClient, db: Session, user: User
) -> None:
    b, client_id, id_token = _signed_in(client, db, user)
    for bad in ("not-a-jwt", id_token[:-6] + "AAAAAA"):
        params = redirect_params(b.get(_authorize(client_id, id_token_hint=bad)))
        assert params["error"] == "invalid_request" and params["state"] == "st"


# --- acr_values and acr (OIDC Core §3.1.2.1, §2) --------------------------------------------


def _id_token_claims(client: TestClient, db: Session, user: User, **extra: str) -> dict[str, Any]:
    registered = make_client(db, first_party=True)
    started = start(oauth_client(client, registered, scope="openid"), **extra)
    code = redirect_params(sign_in(browser(client), started.url, user.email, PASSWORD))["code"]
    tokens = exchange(client, registered, code, started.verifier).json()
    return validate_id_token(client, tokens["id_token"], audience=registered.client_id)


def test_oidcc_ensure_request_with_acr_values_succeeds(
    client: TestClient, db: Session, user: User
) -> None:
    claims = _id_token_claims(client, db, user, acr_values="1 2")
    assert claims["acr"] == "1"  # a password alone: one factor, whatever was asked
    assert "acr" not in _id_token_claims(client, db, user)


def test_acr_is_2_after_a_multi_factor_sign_in(
    client: TestClient, db: Session, user: User, user_headers: dict[str, str]
) -> None:
    secret, _ = enable_totp(client, user_headers)
    registered = make_client(db, first_party=True)
    started = start(oauth_client(client, registered, scope="openid"), acr_values="2")
    b = browser(client)
    mfa_page = sign_in(b, started.url, user.email, PASSWORD)
    answer = submit(b, mfa_page, "/oauth/authorize/mfa", code=code_at(secret, 1))
    code = redirect_params(answer)["code"]
    tokens = exchange(client, registered, code, started.verifier).json()
    claims = validate_id_token(client, tokens["id_token"], audience=registered.client_id)
    assert claims["acr"] == "2" and claims["amr"] == ["pwd", "otp"]


def test_acr_values_is_one_bounded_parameter(client: TestClient, db: Session) -> None:
    registered = make_client(db)
    too_long = redirect_params(
        browser(client).get(_authorize(registered.client_id, acr_values="1 " * 200))
    )
    assert too_long["error"] == "invalid_request"
    twice = browser(client).get(_authorize(registered.client_id) + "&acr_values=1&acr_values=2")
    assert redirect_params(twice)["error"] == "invalid_request"


def test_oidcc_discovery_lists_select_account_acr_values_and_the_acr_claim(
    client: TestClient,
) -> None:
    metadata = client.get("/.well-known/openid-configuration").json()
    assert "select_account" in metadata["prompt_values_supported"]
    assert metadata["acr_values_supported"] == ["1", "2"]
    assert "acr" in metadata["claims_supported"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
