"""The OpenID Connect code flow as a standard client runs it: Authlib's OAuth2 client (PKCE,
fetch_token, refresh_token) through the hosted login page, PyJWT validating the ID token and
the access token against the JWKS."""

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from authlib.integrations.base_client import OAuthError
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core import keys
from app.core.config import Settings
from app.core.keys import generate_private_key
from app.models.user import User
from tests.utils import PASSWORD, api, auth_header
from tests.utils.oidc import (
    ISSUER,
    REDIRECT_URI,
    TOKEN,
    USERINFO,
    browser,
    fresh_keys,
    make_client,
    oauth_client,
    redirect_params,
    sign_in,
    start,
)

__all__ = ["fresh_keys"]  # a fixture, used by name
FULL_SCOPE = "openid email profile offline_access roles account"


pytestmark = pytest.mark.usefixtures("oidc_issuer")


def jwks_key(client: TestClient, token: str) -> Any:
    keys = pyjwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
    kid = pyjwt.get_unverified_header(token)["kid"]
    return next(key for key in keys.keys if key.key_id == kid)


def validate_id_token(client: TestClient, id_token: str, *, audience: str) -> dict[str, Any]:
    key = jwks_key(client, id_token)
    return pyjwt.decode(
        id_token,
        key.key,
        algorithms=[key.algorithm_name],
        audience=audience,
        issuer=ISSUER,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "auth_time", "at_hash", "sid"]},
    )


def at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def test_code_flow_with_pkce_id_token_access_token_userinfo_and_refresh(
    client: TestClient, db: Session, user: User, settings: Callable[..., Settings]
) -> None:
    settings(REFRESH_REUSE_GRACE_SECONDS=0)  # a spent token is reuse at once (no grace)
    registered = make_client(db, first_party=True)
    oauth = oauth_client(client, registered, scope=FULL_SCOPE)
    started = start(oauth)

    answer = sign_in(browser(client), started.url, user.email, PASSWORD)
    params = redirect_params(answer)
    assert answer.headers["location"].startswith(REDIRECT_URI + "?")
    assert params["state"] == started.state
    assert params["iss"] == ISSUER
    token = oauth.fetch_token(
        TOKEN,
        authorization_response=answer.headers["location"],
        code_verifier=started.verifier,
        state=started.state,
    )
    assert token["token_type"] == "Bearer"
    assert set(token["scope"].split()) == set(FULL_SCOPE.split())
    assert token["refresh_token"]

    claims = validate_id_token(client, token["id_token"], audience=registered.client_id)
    assert claims["sub"] == str(user.id)
    assert claims["nonce"] == started.nonce
    assert claims["at_hash"] == at_hash(token["access_token"])
    assert claims["amr"] == ["pwd"]
    assert claims["email"] == user.email and claims["email_verified"] is False
    assert claims["role"] == "user"
    assert isinstance(claims["updated_at"], int) and isinstance(claims["auth_time"], int)

    header = pyjwt.get_unverified_header(token["access_token"])
    assert header["typ"] == "at+jwt"
    key = jwks_key(client, token["access_token"])
    access = pyjwt.decode(
        token["access_token"], key.key, algorithms=[key.algorithm_name], audience=ISSUER
    )
    assert access["client_id"] == registered.client_id
    assert access["sub"] == str(user.id)
    assert access["iss"] == ISSUER
    assert access["auth_time"] == claims["auth_time"]
    assert {"jti", "iat", "exp", "sid", "scope"} <= set(access)

    bearer = auth_header(token["access_token"])
    me = client.get(api("/users/me"), headers=bearer)
    assert me.status_code == 200 and me.json()["email"] == user.email
    info = client.get(USERINFO, headers=bearer)
    assert info.status_code == 200
    assert info.json()["sub"] == str(user.id) and info.json()["email"] == user.email
    assert client.post(USERINFO, headers=bearer).json() == info.json()

    renewed = oauth.refresh_token(TOKEN, refresh_token=token["refresh_token"])
    assert renewed["refresh_token"] != token["refresh_token"]
    renewed_claims = validate_id_token(client, renewed["id_token"], audience=registered.client_id)
    assert renewed_claims["auth_time"] == claims["auth_time"]
    assert client.get(api("/users/me"), headers=auth_header(renewed["access_token"])).is_success

    # The spent refresh token is reuse: the session ends, as at /auth/refresh.
    with pytest.raises(OAuthError) as refused:
        oauth.refresh_token(TOKEN, refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_grant"
    assert (
        client.get(api("/users/me"), headers=auth_header(renewed["access_token"])).status_code
        == 401
    )


def test_oauth_access_token_stops_working_after_logout(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=True)
    oauth = oauth_client(client, registered, scope="openid account")
    started = start(oauth)
    answer = sign_in(browser(client), started.url, user.email, PASSWORD)
    token = oauth.fetch_token(
        TOKEN, authorization_response=answer.headers["location"], code_verifier=started.verifier
    )
    assert "refresh_token" not in token  # no offline_access, no refresh token
    bearer = auth_header(token["access_token"])
    assert client.get(api("/users/me"), headers=bearer).status_code == 200

    assert client.post(api("/auth/logout"), headers=bearer).status_code == 204

    assert client.get(api("/users/me"), headers=bearer).status_code == 401
    refused = client.get(USERINFO, headers=bearer)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("setting", "algorithm"),
    [
        ("ALGORITHM", "RS256"),  # the JWT key serves
        ("ALGORITHM", "ES256"),
        ("OIDC_SIGNING_KEY_FILE", "RS256"),  # HS256 service tokens, an RSA OIDC key
        ("OIDC_SIGNING_KEY_FILE", "ES256"),
    ],
)
def test_a_resource_server_verifies_access_tokens_with_the_jwks_for_rs256_and_es256(
    client: TestClient,
    db: Session,
    user: User,
    settings: Callable[..., Settings],
    tmp_path: Path,
    fresh_keys: None,
    setting: str,
    algorithm: str,
) -> None:
    """The PyJWT recipe of docs/resource-servers.md, as a resource server would run it."""
    pem, kid = generate_private_key(algorithm)
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pem)
    if setting == "ALGORITHM":
        settings(ALGORITHM=algorithm, JWT_PRIVATE_KEY_FILE=key_file)
    else:
        settings(OIDC_SIGNING_KEY_FILE=key_file)
    registered = make_client(db, first_party=True, id_token_signed_response_alg=algorithm)
    oauth = oauth_client(client, registered, scope="openid account")
    started = start(oauth)
    answer = sign_in(browser(client), started.url, user.email, PASSWORD)
    token = oauth.fetch_token(
        TOKEN, authorization_response=answer.headers["location"], code_verifier=started.verifier
    )

    jwks = pyjwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
    header = pyjwt.get_unverified_header(token["id_token"])
    assert (header["alg"], header["kid"]) == (algorithm, kid)  # the client registered it
    # Access tokens: always the active RS256 key (the configured one when it is RS256).
    header = pyjwt.get_unverified_header(token["access_token"])
    assert (header["alg"], header["kid"]) == ("RS256", keys.signing_key("RS256").kid)
    assert algorithm != "RS256" or header["kid"] == kid
    assert header["typ"] == "at+jwt"
    signing_key = jwks[header["kid"]]
    claims = pyjwt.decode(
        token["access_token"],
        signing_key.key,
        algorithms=[signing_key.algorithm_name],
        audience=ISSUER,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "sub", "client_id", "scope"]},
    )
    assert claims["sub"] == str(user.id)
    assert client.get(api("/users/me"), headers=auth_header(token["access_token"])).is_success
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
