"""The OAuth endpoints' cheap path: form bodies parsed as Starlette parses them, and
introspection (and revocation's look-up) reading the client and the token's row on the event
loop; so every change to those rows shows on the very next request, and a lost database
answers 503."""

import asyncio
import base64
import json
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from jose import jws
from jose import jwt as jose_jwt
from jose.exceptions import JOSEError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import FormParser, MultiPartException

from app.api.oauth import MAX_FORM_FIELDS, parse_form
from app.core.config import Settings
from app.core.security import decode_oauth_access_token, generate_private_key, oidc_key
from app.errors import InvalidToken
from app.oauth.tokens import client_access_token
from tests.utils.oidc import ISSUER, fresh_keys

__all__ = ["fresh_keys"]  # a fixture, used by name

INTROSPECT = f"{ISSUER}/oauth/introspect"
REVOKE = f"{ISSUER}/oauth/revoke"
TOKEN_ENDPOINT = f"{ISSUER}/oauth/token"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(autouse=True)
def issuer(settings: Callable[..., Settings]) -> None:
    settings(PUBLIC_URL=ISSUER, RATE_LIMIT_ENABLED=False)


# --- form bodies ---------------------------------------------------------------------------


def starlette_form(body: bytes, chunks: list[bytes]) -> dict[str, list[str]] | str:
    """What request.form() made of `body`, arriving in `chunks`: its fields, or its error."""

    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def parse() -> dict[str, list[str]] | str:
        parser = FormParser(Headers({}), stream(), max_fields=MAX_FORM_FIELDS)
        try:
            form = await parser.parse()
        except MultiPartException as error:
            return error.message
        values: dict[str, list[str]] = {}
        for name, value in form.multi_items():
            assert isinstance(value, str)
            values.setdefault(name, []).append(value)
        return values

    return asyncio.run(parse())


def our_form(body: bytes) -> dict[str, list[str]] | str:
    try:
        return parse_form(body)
    except HTTPException as error:
        assert error.status_code == 400
        return error.detail


EDGE_CASES = [
    b"",
    b"&",
    b"&&a=1&&",
    b"a",
    b"a=",
    b"=a",
    b"a=1=2",
    b"a+b=c+d&a=%2B%26%3D",
    b"e=%C3%A9&raw=\xc3\xa9&bad=%zz&cut=%E2%82&nul=%00&latin=\xff",
    b"a=1;b=2",
    b"&".join(b"f%d=1" % i for i in range(MAX_FORM_FIELDS)) + b"&&",
    b"&".join(b"f%d=1" % i for i in range(MAX_FORM_FIELDS + 1)),
    b"x=" + b"y" * 1024 * 1024,
    b"x" * 1024 * 512 + b"=" + b"y" * 1024 * 512,
]


def test_form_bodies_parse_as_starlette_parses_them() -> None:
    """The same fields, decoding and errors (too many fields, a field too large) as
    request.form(), whatever the chunks the body came in."""
    rng = random.Random(7)
    alphabet = [b"a", b"b", b"=", b"&", b"%", b"2", b"F", b"+", b"%C3%A9", b"\xff", b"%z", b" "]
    bodies = EDGE_CASES + [
        b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(2000)
    ]
    for body in bodies:
        cuts = sorted(rng.sample(range(len(body) + 1), min(3, len(body) + 1)))
        chunks = [body[i:j] for i, j in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        assert our_form(body) == starlette_form(body, chunks), body[:80]


@pytest.mark.parametrize("endpoint", [INTROSPECT, REVOKE, TOKEN_ENDPOINT])
def test_oauth_endpoints_refuse_too_many_fields_and_other_bodies_as_before(
    client: TestClient, endpoint: str
) -> None:
    many = "&".join(f"f{i}=1" for i in range(MAX_FORM_FIELDS + 1))
    response = client.post(endpoint, content=many, headers=FORM)
    assert response.status_code == 400
    assert response.json() == {
        "detail": f"Too many fields. Maximum number of fields is {MAX_FORM_FIELDS}."
    }
    as_json = client.post(endpoint, json={"token": "x"})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    multipart = client.post(endpoint, files={"token": ("token.txt", b"x")})
    assert multipart.status_code == 400 and multipart.json()["error"] == "invalid_request"


# --- the access token's signature ----------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_access_tokens_verify_with_the_cached_key_and_anything_else_is_refused(
    settings: Callable[..., Settings], tmp_path: Path, fresh_keys: None, algorithm: str
) -> None:
    """decode_oauth_access_token checks the signature with cryptography on the cached key:
    python-jose's tokens pass, and whatever python-jose refuses is refused too."""
    pem, _ = generate_private_key(algorithm)
    (tmp_path / "oidc.pem").write_bytes(pem)
    settings(OIDC_SIGNING_KEY_FILE=tmp_path / "oidc.pem")
    token, jti, exp, _ = client_access_token("a-client", "roles")
    claims = decode_oauth_access_token(token)
    assert (claims.sub, claims.client_id, claims.jti, claims.sid) == ("a-client",) * 2 + (jti, None)
    assert int(claims.exp.timestamp()) == exp

    header, payload, signature = token.split(".")
    other_pem, _ = generate_private_key(algorithm)
    other = serialization.load_pem_private_key(other_pem, password=None)
    forged = jose_jwt.encode(
        json.loads(base64.urlsafe_b64decode(payload + "==")),
        other,  # type: ignore[arg-type]
        algorithm=algorithm,
        headers={"kid": oidc_key().kid, "typ": "at+jwt"},
    )
    assert forged.split(".")[0] == header  # the same header: only the signature tells
    raw = base64.urlsafe_b64decode(signature + "==")
    tampered_claims = _b64url(
        json.dumps({**json.loads(base64.urlsafe_b64decode(payload + "==")), "sub": "x"}).encode()
    )
    refused = [
        forged,
        f"{header}.{tampered_claims}.{signature}",
        f"{header}.{payload}.{_b64url(raw[:-1])}",  # too short
        f"{header}.{payload}.{_b64url(raw + b'0')}",  # too long
        f"{header}.{payload}.{_b64url(bytes(len(raw)))}",  # zeros (R = S = 0 for ES256)
        f"{header}.{payload}.{signature[:-2]}+/",  # base64, not base64url
        f"{header}.{payload}.{signature}.{signature}",  # a fourth segment
        f"{header}.{payload}",
        f"{header}.{payload[:10]}*{payload[10:]}.{signature}",
        f"{header}..{signature}",
        f"{header}.{payload}.",
    ]
    for bad in refused:
        with pytest.raises(JOSEError):
            jws.verify(bad, oidc_key().verifier, [algorithm])
        with pytest.raises(InvalidToken):
            decode_oauth_access_token(bad)
    # Stricter than python-jose, whose base64 decoding takes padding (RFC 7515 §2 has none;
    # no token of this service has any): another spelling of a signature is not one.
    padded = f"{header}.{payload}.{signature}="
    assert jws.verify(padded, oidc_key().verifier, [algorithm])
    with pytest.raises(InvalidToken):
        decode_oauth_access_token(padded)
