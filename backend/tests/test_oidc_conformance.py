"""The OpenID Foundation conformance suite's rules (Basic OP, Config OP, RP-Initiated Logout),
one test per module, named after it (test_oidcc_codereuse_30seconds for
oidcc-codereuse-30seconds): what each module asserts of the provider, checked with
independent clients (Authlib, httpx) and PyJWT. The Basic OP modules run as the suite runs
them: a confidential client registered without PKCE, client_secret_basic, response_type
code. The RP-Initiated Logout modules are in test_oidc_logout.py; docs/conformance.md lists
every module, its status and its test. Waits of the suite (max_age, code reuse after 30 s)
are not waited for: the stored times are moved back."""

import base64
import json
import time
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import jwt as pyjwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import Session, select

from app.core.security import token_digest
from app.db import get_engine
from app.models.client import AuthorizationCode, ClientCreated, OAuthClient
from app.models.session import AuthSession, SessionKind
from app.models.user import User
from app.oauth import tokens as oauth_tokens
from tests.test_mfa import code_at, enable_totp
from tests.test_oidc_flow import jwks_key, validate_id_token
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
    refresh_grant,
    sign_in,
    start,
    submit,
    submit_login,
)

pytestmark = pytest.mark.usefixtures("oidc_issuer")


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


# --- request objects, request_uri, registration (OIDC Core §6, §7.2.1) ----------------------


def _refused_parameter(client: TestClient, db: Session, parameter: str, value: str) -> str:
    """The error a request carrying `parameter` is answered with, by redirect with state."""
    registered = make_client(db)
    params = redirect_params(
        browser(client).get(_authorize(registered.client_id, **{parameter: value}))
    )
    assert params["state"] == "st" and params["iss"] == ISSUER and "code" not in params
    return params["error"]


def test_oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(
    client: TestClient, db: Session
) -> None:
    """The suite skips this module when request_uri_not_supported comes back (and for a
    static client it is not run at all)."""
    uri = "https://rp.example.com/request.jwt"
    assert _refused_parameter(client, db, "request_uri", uri) == "request_uri_not_supported"


def test_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(
    client: TestClient, db: Session
) -> None:
    """An alg none request object (`e30.e30.`): request_not_supported, so the suite skips."""
    assert _refused_parameter(client, db, "request", "e30.e30.") == "request_not_supported"


def test_oidcc_registration_parameter_is_registration_not_supported(
    client: TestClient, db: Session
) -> None:
    assert _refused_parameter(client, db, "registration", "{}") == "registration_not_supported"


def test_oidcc_ensure_request_object_with_redirect_uri(client: TestClient, db: Session) -> None:
    """The registered redirect_uri inside the request object, `<it>_invalid` as the query
    parameter: the suite accepts the request object's URI used, or an error page about the
    redirect URI; a redirect to the registered URI (request_not_supported) would FAIL it."""
    registered = make_client(db)
    claims = {"redirect_uri": REDIRECT_URI, "client_id": registered.client_id}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    request_object = f"e30.{payload}."
    url = _authorize(
        registered.client_id, redirect_uri=REDIRECT_URI + "_invalid", request=request_object
    )
    page = browser(client).get(url)
    assert page.status_code == 400 and "location" not in page.headers
    assert "redirect URI is not registered" in page.text


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


def test_oidcc_server(client: TestClient, db: Session, user: User) -> None:
    """The Basic OP plan's happy flow: Authlib, client_secret_basic, no PKCE, a nonce."""
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


def test_oidcc_id_token_hint(client: TestClient, db: Session, user: User) -> None:
    """The second request: prompt=none and the first sign-in's ID token as the hint."""
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


# --- the Basic OP plan, module by module --------------------------------------------------
# As the suite runs it: a static confidential client registered without PKCE, response_type
# code, client_secret_basic (client_secret_post for oidcc-server-client-secret-post), scope
# openid unless the module says, state "st" and a nonce on every request.


def _basic_client(db: Session, **fields: Any) -> ClientCreated:
    return make_client(db, first_party=True, require_pkce=False, **fields)


def _basic_url(client_id: str, **extra: str | None) -> str:
    return _authorize(client_id, **{**NO_PKCE, **extra})


def _code(b: httpx.Client, url: str, user: User, *, login: bool = True) -> str:
    """Open `url` in browser `b`, sign in on the login page (`login`) or expect none; the code
    of the redirect, whose state and iss are checked."""
    answer = b.get(url)
    if login:
        answer = submit_login(b, answer, user.email, PASSWORD)
    else:
        assert not is_login_page(answer), "a login page where the suite expects none"
    params = redirect_params(answer)
    assert params["state"] == "st" and params["iss"] == ISSUER, params
    return params["code"]


def _basic_exchange(
    client: TestClient, registered: ClientCreated, code: str, *, post: bool = False
) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    secret = str(registered.client_secret)
    if post:  # client_secret_post
        form |= {"client_id": registered.client_id, "client_secret": secret}
        return client.post(TOKEN, data=form)
    return client.post(TOKEN, data=form, auth=(registered.client_id, secret))


def _basic_tokens(
    client: TestClient, registered: ClientCreated, code: str, *, post: bool = False
) -> dict[str, Any]:
    """The token response, checked as the suite checks every one."""
    response = _basic_exchange(client, registered, code, post=post)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "no-store" in response.headers["cache-control"]
    tokens = dict(response.json())
    assert tokens["token_type"].lower() == "bearer" and tokens["expires_in"] > 0
    tokens["claims"] = validate_id_token(client, tokens["id_token"], audience=registered.client_id)
    return tokens


def _userinfo(client: TestClient, access_token: str) -> dict[str, Any]:
    info = client.get(USERINFO, headers={"Authorization": f"Bearer {access_token}"})
    assert info.status_code == 200, info.text
    assert info.headers["content-type"].startswith("application/json")
    return dict(info.json())


def _age_login(user: User, first: dict[str, Any], seconds: int) -> None:
    """Move the user's browser sign-ins, and the first ID token's auth_time with them,
    `seconds` into the past: the time the suite waits, or its user takes, not waited for."""
    first["auth_time"] -= seconds
    with Session(get_engine()) as session:
        rows = session.exec(
            select(AuthSession).where(
                AuthSession.user_id == user.id, AuthSession.kind == SessionKind.BROWSER
            )
        ).all()
        assert rows
        for row in rows:
            assert row.auth_time is not None
            row.auth_time -= timedelta(seconds=seconds)
            session.add(row)
        session.commit()


def _first_sign_in(
    client: TestClient, db: Session, user: User
) -> tuple[httpx.Client, ClientCreated, dict[str, Any]]:
    """The first of two authorizations (the suite's "same auth twice" modules): a browser
    signed in, the client, and the first ID token's claims (and the token as `id_token`)."""
    registered, b = _basic_client(db), browser(client)
    tokens = _basic_tokens(client, registered, _code(b, _basic_url(registered.client_id), user))
    return b, registered, {**tokens["claims"], "id_token": tokens["id_token"]}


def test_oidcc_server_client_secret_post(client: TestClient, db: Session, user: User) -> None:
    registered = _basic_client(db, token_endpoint_auth_method="client_secret_post")
    code = _code(browser(client), _basic_url(registered.client_id), user)
    tokens = _basic_tokens(client, registered, code, post=True)
    assert tokens["claims"]["nonce"] == "n-0S6_WzA2Mj" and tokens["claims"]["sub"] == str(user.id)


def test_oidcc_response_type_missing(client: TestClient, db: Session) -> None:
    registered = _basic_client(db)
    answer = browser(client).get(_basic_url(registered.client_id, response_type=None))
    params = redirect_params(answer)
    assert params["error"] == "invalid_request" and params["state"] == "st"
    assert "code" not in params


def test_oidcc_idtoken_signature(client: TestClient, db: Session, user: User) -> None:
    """A kid in the header, a signature the JWKS verifies, never alg none."""
    registered = _basic_client(db)
    url = _basic_url(registered.client_id)
    tokens = _basic_tokens(client, registered, _code(browser(client), url, user))
    header = pyjwt.get_unverified_header(tokens["id_token"])
    assert header["kid"] and header["alg"] != "none"


def test_oidcc_idtoken_signature_is_rs256_by_default(
    client: TestClient, db: Session, user: User
) -> None:
    registered = _basic_client(db)
    url = _basic_url(registered.client_id)
    tokens = _basic_tokens(client, registered, _code(browser(client), url, user))
    assert pyjwt.get_unverified_header(tokens["id_token"])["alg"] == "RS256"


def test_oidcc_idtoken_unsigned(client: TestClient) -> None:
    """Not run for a static client; skipped by the suite when discovery does not list none."""
    metadata = client.get("/.well-known/openid-configuration").json()
    assert "none" not in metadata["id_token_signing_alg_values_supported"]


def test_oidcc_userinfo_get(client: TestClient, db: Session, user: User) -> None:
    registered = _basic_client(db)
    url = _basic_url(registered.client_id)
    tokens = _basic_tokens(client, registered, _code(browser(client), url, user))
    assert _userinfo(client, tokens["access_token"])["sub"] == tokens["claims"]["sub"]


def _scope_claims(client: TestClient, db: Session, user: User, scope: str) -> dict[str, Any]:
    """Userinfo after a request for `scope` (the suite's returned-claims modules)."""
    registered = _basic_client(db)
    code = _code(browser(client), _basic_url(registered.client_id, scope=scope), user)
    tokens = _basic_tokens(client, registered, code)
    info = _userinfo(client, tokens["access_token"])
    assert info["sub"] == tokens["claims"]["sub"] and None not in info.values()
    return info


def test_oidcc_scope_profile(
    client: TestClient, db: Session, user_factory: Callable[..., User]
) -> None:
    """The suite WARNs: it expects all 14 profile claims, the service keeps name and
    updated_at (and says so in claims_supported)."""
    info = _scope_claims(client, db, user_factory(full_name="Ada Lovelace"), "openid profile")
    assert info["name"] == "Ada Lovelace" and isinstance(info["updated_at"], int)


def test_oidcc_scope_email(client: TestClient, db: Session, user: User) -> None:
    info = _scope_claims(client, db, user, "openid email")
    assert info["email"] == user.email and isinstance(info["email_verified"], bool)


def test_oidcc_ensure_other_scope_order_succeeds(
    client: TestClient, db: Session, user: User
) -> None:
    info = _scope_claims(client, db, user, "email openid")
    assert info["email"] == user.email


def _scope_is_skipped(client: TestClient, db: Session, scope: str) -> None:
    """scopes_supported lacks the scope (the service keeps no address or phone), so the
    suite skips the module; asked anyway, the request is answered invalid_scope."""
    metadata = client.get("/.well-known/openid-configuration").json()
    assert not set(scope.split()) <= set(metadata["scopes_supported"])
    registered = _basic_client(db)
    params = redirect_params(browser(client).get(_basic_url(registered.client_id, scope=scope)))
    assert params["error"] == "invalid_scope" and params["state"] == "st"


def test_oidcc_scope_address(client: TestClient, db: Session) -> None:
    _scope_is_skipped(client, db, "openid address")


def test_oidcc_scope_phone(client: TestClient, db: Session) -> None:
    _scope_is_skipped(client, db, "openid phone")


def test_oidcc_scope_all(client: TestClient, db: Session) -> None:
    _scope_is_skipped(client, db, "openid profile email address phone")


def _succeeds_with(client: TestClient, db: Session, user: User, **extra: str) -> None:
    """The request with `extra` goes through the login page to a code and tokens."""
    registered = _basic_client(db)
    code = _code(browser(client), _basic_url(registered.client_id, **extra), user)
    _userinfo(client, _basic_tokens(client, registered, code)["access_token"])


def test_oidcc_display_page(client: TestClient, db: Session, user: User) -> None:
    _succeeds_with(client, db, user, display="page")


def test_oidcc_display_popup(client: TestClient, db: Session, user: User) -> None:
    _succeeds_with(client, db, user, display="popup")


def test_oidcc_prompt_login(client: TestClient, db: Session, user: User) -> None:
    b, registered, first = _first_sign_in(client, db, user)
    _age_login(user, first, 5)  # the suite's user takes seconds to sign in again
    page = b.get(_basic_url(registered.client_id, prompt="login"))
    assert is_login_page(page), "prompt=login must show the login page to a signed-in user"
    code = redirect_params(submit_login(b, page, user.email, PASSWORD))["code"]
    second = _basic_tokens(client, registered, code)["claims"]
    assert second["sub"] == first["sub"] and second["auth_time"] > first["auth_time"]


def test_oidcc_prompt_none_not_logged_in(client: TestClient, db: Session) -> None:
    registered = _basic_client(db)
    params = redirect_params(browser(client).get(_basic_url(registered.client_id, prompt="none")))
    assert params["error"] == "login_required" and params["state"] == "st"
    assert "code" not in params


def _second_without_login(
    client: TestClient, db: Session, user: User, **extra: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two authorizations in one browser, the second with `extra` and no login page: the
    two ID tokens' claims."""
    b, registered, first = _first_sign_in(client, db, user)
    code = _code(b, _basic_url(registered.client_id, **extra), user, login=False)
    second = _basic_tokens(client, registered, code)["claims"]
    assert second["sub"] == first["sub"] and second["auth_time"] == first["auth_time"]
    return first, second


def test_oidcc_prompt_none_logged_in(client: TestClient, db: Session, user: User) -> None:
    _second_without_login(client, db, user, prompt="none")


def test_oidcc_max_age_1(client: TestClient, db: Session, user: User) -> None:
    b, registered, first = _first_sign_in(client, db, user)
    _age_login(user, first, 2)  # the suite waits 2 s
    page = b.get(_basic_url(registered.client_id, max_age="1"))
    assert is_login_page(page), "max_age=1 must ask for a new login"
    code = redirect_params(submit_login(b, page, user.email, PASSWORD))["code"]
    second = _basic_tokens(client, registered, code)["claims"]
    assert second["auth_time"] > first["auth_time"]
    assert abs(second["auth_time"] - second["iat"]) <= 5  # recent


def test_oidcc_max_age_10000(client: TestClient, db: Session, user: User) -> None:
    _second_without_login(client, db, user, max_age="10000")


def test_oidcc_ensure_request_with_unknown_parameter_succeeds(
    client: TestClient, db: Session, user: User
) -> None:
    _succeeds_with(client, db, user, extra="foobar")


def test_oidcc_login_hint(client: TestClient, db: Session, user: User) -> None:
    registered = _basic_client(db)
    page = browser(client).get(_basic_url(registered.client_id, login_hint=user.email))
    assert is_login_page(page) and f'value="{user.email}"' in page.text


def test_oidcc_ui_locales(client: TestClient, db: Session, user: User) -> None:
    """Accepted and ignored: the hosted pages are in English."""
    _succeeds_with(client, db, user, ui_locales="se")


def test_oidcc_claims_locales(client: TestClient, db: Session, user: User) -> None:
    """Accepted and ignored: no claim has localized values."""
    _succeeds_with(client, db, user, claims_locales="se")


def _set_code_times(code: str, back: timedelta) -> None:
    with Session(get_engine()) as session:
        row = session.get(AuthorizationCode, token_digest(code))
        assert row is not None
        row.created_at -= back
        row.expires_at -= back
        if row.used_at is not None:
            row.used_at -= back
        session.add(row)
        session.commit()


def _code_reused(client: TestClient, db: Session, user: User, delay: int) -> None:
    """A second exchange of the code (at once, or 30 s later: the code's times are moved
    back rather than waited for): 400 invalid_grant in JSON, and the access token the first
    exchange issued stops working (else the suite WARNs)."""
    registered = _basic_client(db)
    code = _code(browser(client), _basic_url(registered.client_id), user)
    tokens = _basic_tokens(client, registered, code)
    _set_code_times(code, timedelta(seconds=delay))
    again = _basic_exchange(client, registered, code)
    assert again.status_code == 400 and again.headers["content-type"].startswith("application/json")
    assert again.json()["error"] == "invalid_grant"
    assert not any(c in again.json().get("error_description", "") for c in '\r\n\t"\\')
    info = client.get(USERINFO, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 401


def test_oidcc_codereuse(client: TestClient, db: Session, user: User) -> None:
    _code_reused(client, db, user, 0)


def test_oidcc_codereuse_30seconds(client: TestClient, db: Session, user: User) -> None:
    _code_reused(client, db, user, 30)


def test_oidcc_ensure_registered_redirect_uri(client: TestClient, db: Session) -> None:
    registered = _basic_client(db)
    url = _basic_url(registered.client_id, redirect_uri="https://evil.example.com/callback")
    page = browser(client).get(url)
    assert page.status_code == 400 and "location" not in page.headers
    assert "redirect URI is not registered" in page.text


def test_oidcc_ensure_post_request_succeeds(client: TestClient, db: Session, user: User) -> None:
    registered = _basic_client(db)
    query = dict(parse_qsl(urlsplit(_basic_url(registered.client_id)).query))
    b = browser(client)
    page = b.post("/oauth/authorize", data=query)
    assert is_login_page(page)
    params = redirect_params(submit_login(b, page, user.email, PASSWORD))
    assert params["state"] == "st"
    _basic_tokens(client, registered, params["code"])


def test_oidcc_claims_essential(
    client: TestClient, db: Session, user_factory: Callable[..., User]
) -> None:
    """The claims parameter (name essential in userinfo) is not supported: discovery says
    so, the request succeeds and the scopes alone choose the claims. The suite WARNs when
    userinfo lacks name: with scope openid it does; with profile, a user with a name has it."""
    named = user_factory(full_name="Ada Lovelace")
    claims = json.dumps({"userinfo": {"name": {"essential": True}}})
    registered = _basic_client(db)
    for scope, has_name in (("openid", False), ("openid profile", True)):
        url = _basic_url(registered.client_id, scope=scope, claims=claims)
        tokens = _basic_tokens(client, registered, _code(browser(client), url, named))
        assert ("name" in _userinfo(client, tokens["access_token"])) is has_name
        assert "name" not in tokens["claims"] or has_name


def test_oidcc_refresh_token(
    client: TestClient, db: Session, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With offline_access (and the prompt=consent the suite adds): a refresh token of
    RFC 6749 characters, a refresh with `scope` that answers a new access token and an ID
    token of the same iss/sub/aud/auth_time and a later iat, and another client's refresh
    token refused."""
    scope = "openid email offline_access"
    registered, other = _basic_client(db), _basic_client(db, name="Second client")
    tokens: list[dict[str, Any]] = []
    for rp in (registered, other):
        url = _basic_url(rp.client_id, scope=scope, prompt="consent")
        tokens.append(_basic_tokens(client, rp, _code(browser(client), url, user)))
    first = tokens[0]
    assert all(0x20 <= ord(c) <= 0x7E for c in first["refresh_token"])
    metadata = client.get("/.well-known/openid-configuration").json()
    assert "refresh_token" in metadata["grant_types_supported"]

    real_time = time.time  # the suite waits 1 s so that iat differs: a clock 1 s ahead
    monkeypatch.setattr(oauth_tokens, "time", SimpleNamespace(time=lambda: real_time() + 1))
    renewed = refresh_grant(client, registered, first["refresh_token"], scope=scope)
    assert renewed.status_code == 200, renewed.text
    assert "no-store" in renewed.headers["cache-control"]
    body = renewed.json()
    assert body["token_type"].lower() == "bearer" and body["expires_in"] > 0
    assert body["access_token"] != first["access_token"]
    key = jwks_key(client, body["id_token"])  # verified, with the clock 1 s ahead
    second = pyjwt.decode(
        body["id_token"],
        key.key,
        algorithms=[key.algorithm_name],
        audience=registered.client_id,
        issuer=ISSUER,
        leeway=5,
    )
    for name in ("iss", "sub", "aud", "auth_time"):
        assert second[name] == first["claims"][name], name
    assert second["iat"] != first["claims"]["iat"] and "azp" not in second
    _userinfo(client, body["access_token"])

    stolen = refresh_grant(client, registered, tokens[1]["refresh_token"])
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"


def test_oidcc_ensure_request_with_valid_pkce_succeeds(
    client: TestClient, db: Session, user: User
) -> None:
    """The same client, now sending an S256 challenge: held to its verifier."""
    registered = _basic_client(db)
    code = _code(browser(client), _authorize(registered.client_id), user)
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B
    answer = exchange(client, registered, code, verifier)
    assert answer.status_code == 200, answer.text
    validate_id_token(client, answer.json()["id_token"], audience=registered.client_id)


# --- the Config OP plan ----------------------------------------------------------------------


def test_oidcc_discovery_endpoint_verification(client: TestClient) -> None:
    """What the module's conditions check, RS256 aside (the test below)."""
    answer = client.get("/.well-known/openid-configuration")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    metadata = answer.json()
    assert metadata["issuer"] == ISSUER  # the URL the document was fetched from, less the path
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert metadata[name].startswith("https://"), name
    assert all(
        value.startswith("https://")
        for name, value in metadata.items()
        if name.endswith(("_endpoint", "_uri")) and isinstance(value, str)
    )
    assert "openid" in metadata["scopes_supported"]
    assert all(" " not in scope for scope in metadata["scopes_supported"])
    assert "code" in metadata["response_types_supported"]
    assert set(metadata["subject_types_supported"]) <= {"public", "pairwise"}
    assert "none" not in metadata["id_token_signing_alg_values_supported"]
    assert isinstance(metadata["claims_supported"], list) and "sub" in metadata["claims_supported"]
    assert metadata["claims_parameter_supported"] is False
    assert metadata["grant_types_supported"]  # a non-empty array
    assert isinstance(metadata["code_challenge_methods_supported"], list)
    assert "registration_endpoint" not in metadata

    keys = client.get(metadata["jwks_uri"].removeprefix(ISSUER)).json()["keys"]
    assert keys
    for key in keys:
        assert key["kid"] and key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key)  # public keys only
    assert pyjwt.PyJWKSet.from_dict({"keys": keys}).keys


def test_oidcc_discovery_endpoint_verification_lists_rs256(client: TestClient) -> None:
    metadata = client.get("/.well-known/openid-configuration").json()
    assert "RS256" in metadata["id_token_signing_alg_values_supported"]
