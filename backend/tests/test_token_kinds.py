"""One parser and claim validator for every kind of token (core/security.py decode): each
kind accepts its own tokens and refuses every other kind's, and the clock rules hold for
all of them alike; only an id_token_hint may have expired."""

import time
import uuid
from typing import Any

import pytest
from jose import jwt

from app.core.config import get_settings
from app.core.keys import ID_TOKEN_TYPE, OAUTH_ACCESS_TYPE, key_set
from app.core.security import MAX_CLOCK_SKEW_S, TokenKind, TokenType, decode, sign_oidc_jwt
from app.errors import InvalidToken
from tests.utils.oidc import ISSUER

KINDS = {
    "access": TokenKind.ACCESS,
    "refresh": TokenKind.REFRESH,
    "mfa": TokenKind.MFA,
    "oauth_access": TokenKind.OAUTH_ACCESS,
    "id_token_hint": TokenKind.ID_TOKEN_HINT,
}
SERVICE = {token_type.value for token_type in TokenType}  # the service's own kinds

pytestmark = pytest.mark.usefixtures("oidc_issuer")


def token_of(kind: str, **changed: Any) -> str:
    """A token of `kind` as the service writes it, with `changed` claims (None: left out)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": str(uuid.uuid4()), "iat": now, "exp": now + 300}
    if kind in SERVICE:
        claims |= {"sid": str(uuid.uuid4()), "type": kind, "jti": "a-jti"}
    elif kind == "oauth_access":
        claims |= {"iss": ISSUER, "aud": ISSUER, "client_id": "app", "scope": "openid"}
        claims |= {"jti": "a-jti", "sid": str(uuid.uuid4())}
    else:
        claims |= {"iss": ISSUER, "aud": "app", "sid": "a-browser-session"}
    claims = {name: value for name, value in (claims | changed).items() if value is not None}
    if kind in SERVICE:
        headers = {"kid": key_set().kid}
        return jwt.encode(claims, get_settings().SECRET_KEY, algorithm="HS256", headers=headers)
    return sign_oidc_jwt(claims, typ=OAUTH_ACCESS_TYPE if kind == "oauth_access" else ID_TOKEN_TYPE)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_accepts_its_own_tokens_and_no_other_kind(kind: str) -> None:
    for other in KINDS:
        token = token_of(other)
        if other == kind:
            assert str(decode(token, KINDS[kind]).sub) == jwt.get_unverified_claims(token)["sub"]
            continue
        with pytest.raises(InvalidToken):
            decode(token, KINDS[kind])
            pytest.fail(f"a {other} token read as {kind}")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_refuses_a_token_from_the_future_and_only_a_hint_may_have_expired(
    kind: str,
) -> None:
    now = int(time.time())
    ahead = now + MAX_CLOCK_SKEW_S + 60
    for refused in ({"iat": ahead}, {"nbf": ahead}, {"nbf": "now"}, {"iat": None}):
        with pytest.raises(InvalidToken):
            decode(token_of(kind, **refused), KINDS[kind])
            pytest.fail(str(refused))
    for skew in ({"iat": now + 30}, {"nbf": now + 30}, {"nbf": now - 600}):
        assert decode(token_of(kind, **skew), KINDS[kind])
    expired = token_of(kind, iat=now - 600, exp=now - 1)
    if kind == "id_token_hint":
        assert decode(expired, KINDS[kind])
    else:
        with pytest.raises(InvalidToken):
            decode(expired, KINDS[kind])
