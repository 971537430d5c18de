"""Strict token parsing (OIDC.md, revision 2): every token the service verifies has one
accepted string. A second string for the same token (an ES256 signature's S turned into
n - S, non-zero trailing bits in a base64url segment's last character, padding) verifies
with lenient libraries; here it is refused everywhere: the service's own access, refresh
and MFA tokens, OAuth access and refresh tokens (API, userinfo, introspection, the refresh
grant) and id_token_hint. (A changed header or payload segment also changes what was signed,
so those were refused before; the signature segment's forms and S were not.) The tokens the
service signs still verify with PyJWT and Authlib."""

import base64
import json
import string
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt as pyjwt
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.core.keys import OAUTH_ACCESS_TYPE, generate_private_key
from app.core.security import (
    TokenKind,
    TokenType,
    create_token,
    decode,
    sign_oidc_jwt,
)
from app.errors import InvalidToken
from app.models.user import User
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.oidc import (
    ISSUER,
    USERINFO,
    browser,
    exchange,
    fresh_keys,
    is_login_page,
    make_client,
    oauth_client,
    redirect_params,
    refresh_grant,
    sign_in,
    start,
)

with warnings.catch_warnings():  # authlib.jose is deprecated for joserfc, and still Authlib's
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey
    from authlib.jose import jwt as authlib_jwt

__all__ = ["fresh_keys"]  # a fixture, used by name
B64URL = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
SEGMENTS = ("header", "payload", "signature")
HALF = 32  # bytes of R, then of S, in an ES256 signature
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # SEC 2, n


@pytest.fixture(autouse=True)
def issuer(settings: Callable[..., Settings], fresh_keys: None) -> None:
    settings(PUBLIC_URL=ISSUER, RATE_LIMIT_ENABLED=False)


def lenient_b64decode(segment: str) -> bytes:
    """What python-jose and PyJWT read a segment as: padding added, the spare bits dropped."""
    return base64.urlsafe_b64decode(segment.rstrip("=") + "==")


def signature_s(token: str) -> int:
    return int.from_bytes(lenient_b64decode(token.rsplit(".", 1)[1])[HALF:], "big")


def with_segment(token: str, index: int, segment: str) -> str:
    parts = token.split(".")
    parts[index] = segment
    return ".".join(parts)


def second_strings(token: str) -> dict[str, str]:
    """Other strings that lenient decoders read as `token` itself, by what was changed."""
    parts = token.split(".")
    variants: dict[str, str] = {}
    for index, name in enumerate(SEGMENTS):
        segment = parts[index]
        spare_bits = {2: 4, 3: 2}.get(len(segment) % 4, 0)
        if spare_bits:
            last = B64URL.index(segment[-1])
            assert last % (1 << spare_bits) == 0  # the service writes them as zero
            changed = segment[:-1] + B64URL[last | 1]
            variants[f"{name}: trailing bits"] = with_segment(token, index, changed)
            padded = segment + "=" * (-len(segment) % 4)
            variants[f"{name}: padding"] = with_segment(token, index, padded)
    assert "signature: trailing bits" in variants  # 32, 64 or 256 bytes: spare bits in all
    for variant in variants.values():
        assert variant != token
        assert [lenient_b64decode(s) for s in variant.split(".")] == [
            lenient_b64decode(s) for s in parts
        ]
    if json.loads(lenient_b64decode(parts[0]))["alg"] == "ES256":
        signature = lenient_b64decode(parts[2])
        flipped = (P256_ORDER - signature_s(token)).to_bytes(HALF, "big")
        encoded = base64.urlsafe_b64encode(signature[:HALF] + flipped).rstrip(b"=").decode()
        variants["signature: S -> n - S"] = with_segment(token, 2, encoded)
    return variants


def jwks_verifies(client: TestClient, token: str) -> dict[str, Any]:
    """The claims of `token` as PyJWT and Authlib read them with the published JWKS only."""
    jwks = client.get("/.well-known/jwks.json").json()
    header = pyjwt.get_unverified_header(token)
    key = pyjwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = pyjwt.decode(token, key.key, algorithms=[header["alg"]], options={"verify_aud": False})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        authlib_claims = authlib_jwt.decode(token, JsonWebKey.import_key_set(jwks))
    assert dict(authlib_claims) == claims
    return claims


def use_keys(settings: Callable[..., Settings], tmp_path: Path, *, service: str, oidc: str) -> None:
    """The service's own tokens signed with `service` (HS256 or a key of that algorithm),
    ID tokens and OAuth access tokens with an `oidc` key."""
    if service != "HS256":
        pem, _ = generate_private_key(service)
        (tmp_path / "service.pem").write_bytes(pem)
        settings(ALGORITHM=service, JWT_PRIVATE_KEY_FILE=tmp_path / "service.pem")
    pem, _ = generate_private_key(oidc)
    (tmp_path / "oidc.pem").write_bytes(pem)
    settings(OIDC_SIGNING_KEY_FILE=tmp_path / "oidc.pem")


def me(client: TestClient, token: str) -> int:
    return client.get(api("/users/me"), headers=auth_header(token)).status_code


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "ES256"])
def test_the_services_own_tokens_verify_under_their_one_string_only(
    client: TestClient,
    user: User,
    settings: Callable[..., Settings],
    tmp_path: Path,
    algorithm: str,
) -> None:
    use_keys(settings, tmp_path, service=algorithm, oidc="ES256")
    tokens = login(client, user.email)
    for name, variant in second_strings(tokens["access_token"]).items():
        assert me(client, variant) == 401, name
    assert me(client, tokens["access_token"]) == 200

    for name, variant in second_strings(tokens["refresh_token"]).items():
        refused = client.post(api("/auth/refresh"), json={"refresh_token": variant})
        assert refused.status_code == 401, name
    renewed = client.post(api("/auth/refresh"), json={"refresh_token": tokens["refresh_token"]})
    assert renewed.status_code == 200  # the session was not rotated by a second string

    expires = datetime.now(UTC) + timedelta(minutes=5)
    mfa = create_token(
        subject=user.id, session_id=user.id, token_type=TokenType.MFA, expires_at=expires
    ).token
    assert decode(mfa, TokenKind.MFA).sub == user.id
    for name, variant in second_strings(mfa).items():
        with pytest.raises(InvalidToken):
            decode(variant, TokenKind.MFA)
            pytest.fail(name)


def resource_server(client: TestClient, db: Session) -> Callable[[str], dict[str, Any]]:
    """Introspection as a resource server asks for it, with its own confidential client."""
    registered = make_client(db, name="Orders API", redirect_uris=[], grant_types=["refresh_token"])
    credentials = (registered.client_id, str(registered.client_secret))

    def introspect(token: str) -> dict[str, Any]:
        response = client.post(
            f"{ISSUER}/oauth/introspect", data={"token": token}, auth=credentials
        )
        assert response.status_code == 200
        answer: dict[str, Any] = response.json()
        return answer

    return introspect


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_oauth_tokens_verify_under_their_one_string_only(
    client: TestClient,
    db: Session,
    user: User,
    settings: Callable[..., Settings],
    tmp_path: Path,
    algorithm: str,
) -> None:
    use_keys(settings, tmp_path, service="HS256", oidc=algorithm)
    registered = make_client(db, first_party=True)
    oauth = oauth_client(client, registered, scope="openid offline_access")
    started = start(oauth)
    code = redirect_params(sign_in(browser(client), started.url, user.email, PASSWORD))["code"]
    tokens = exchange(client, registered, code, started.verifier).json()
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    introspect = resource_server(client, db)

    for name, variant in second_strings(access).items():
        assert introspect(variant) == {"active": False}, name
        assert me(client, variant) == 401, name
        assert client.get(USERINFO, headers=auth_header(variant)).status_code == 401, name
    assert introspect(access)["active"] is True
    assert client.get(USERINFO, headers=auth_header(access)).status_code == 200

    for name, variant in second_strings(refresh).items():
        assert introspect(variant) == {"active": False}, name
        refused = refresh_grant(client, registered, variant)
        assert refused.json()["error"] == "invalid_grant", name
    assert introspect(refresh)["active"] is True
    assert refresh_grant(client, registered, refresh).status_code == 200


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_an_id_token_hint_is_accepted_under_its_one_string_only(
    client: TestClient,
    db: Session,
    user: User,
    settings: Callable[..., Settings],
    tmp_path: Path,
    algorithm: str,
) -> None:
    use_keys(settings, tmp_path, service="HS256", oidc=algorithm)
    registered = make_client(db, first_party=True)
    b = browser(client)
    oauth = oauth_client(client, registered, scope="openid")
    started = start(oauth)
    code = redirect_params(sign_in(b, started.url, user.email, PASSWORD))["code"]
    id_token = exchange(client, registered, code, started.verifier).json()["id_token"]
    assert decode(id_token, TokenKind.ID_TOKEN_HINT).sub == str(user.id)

    for name, variant in second_strings(id_token).items():
        with pytest.raises(InvalidToken):
            decode(variant, TokenKind.ID_TOKEN_HINT)
            pytest.fail(name)
        page = b.get(f"/oauth/logout?{urlencode({'id_token_hint': variant})}")
        # a modified hint is an error page that ends nothing (oidcc-rp-initiated-logout-
        # modified-id-token-hint)
        assert page.status_code == 400 and "Sign out?" not in page.text, name
    assert still_signed_in(client, b, registered)

    ended = b.get(f"/oauth/logout?{urlencode({'id_token_hint': id_token})}")
    assert ended.status_code == 200 and "Sign out?" not in ended.text
    assert not still_signed_in(client, b, registered)


def still_signed_in(client: TestClient, b: httpx.Client, registered: Any) -> bool:
    return not is_login_page(b.get(start(oauth_client(client, registered)).url))


def test_es256_tokens_are_signed_low_s_and_verify_with_pyjwt_and_authlib(
    client: TestClient, db: Session, user: User, settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """ECDSA signs with a random one of S and n - S; every ES256 token is written with the
    low one (a 2**-32 chance for each batch of 32 otherwise), and libraries verify it."""
    use_keys(settings, tmp_path, service="ES256", oidc="ES256")
    expires = datetime.now(UTC) + timedelta(minutes=5)
    own = [
        create_token(subject=user.id, session_id=user.id, token_type=kind, expires_at=expires)
        for kind in list(TokenType) * 11
    ]
    oauth = [
        sign_oidc_jwt({"sub": str(n)}, typ=OAUTH_ACCESS_TYPE, algorithm="ES256") for n in range(32)
    ]
    for token in [issued.token for issued in own] + oauth:
        assert signature_s(token) <= P256_ORDER // 2

    tokens = login(client, user.email)
    registered = make_client(db, first_party=True, id_token_signed_response_alg="ES256")
    oauth_flow = oauth_client(client, registered, scope="openid offline_access")
    started = start(oauth_flow)
    code = redirect_params(sign_in(browser(client), started.url, user.email, PASSWORD))["code"]
    granted = exchange(client, registered, code, started.verifier).json()
    assert pyjwt.get_unverified_header(granted["access_token"])["alg"] == "RS256"  # always
    for token in (
        tokens["access_token"],
        tokens["refresh_token"],
        granted["access_token"],
        granted["id_token"],
    ):
        assert jwks_verifies(client, token)["sub"] == str(user.id)
    for token in (tokens["access_token"], tokens["refresh_token"], granted["id_token"]):
        assert pyjwt.get_unverified_header(token)["alg"] == "ES256"
