"""The OAuth endpoints' cheap path: form bodies parsed as Starlette parses them, and
introspection (and revocation's look-up) reading the client and the token's row on the event
loop; so every change to those rows shows on the very next request, and a lost database
answers 503."""

import asyncio
import base64
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from jose import jws
from jose import jwt as jose_jwt
from jose.exceptions import JOSEError
from sqlalchemy import make_url, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import FormParser, MultiPartException

from app.api.oauth import MAX_FORM_FIELDS, parse_form
from app.core.config import Settings, get_settings
from app.core.keys import OAUTH_ACCESS_TYPE, generate_private_key, signing_key
from app.core.security import TokenKind, decode, sign_oidc_jwt
from app.errors import InvalidToken
from app.models.client import ClientCreated, ClientToken
from app.models.common import utcnow
from app.models.session import AuthSession, SessionKind
from app.models.user import User
from app.oauth.tokens import client_access_token
from app.reads import AsyncReadPool, PreparedRead
from tests.test_request_path import statements, thread_hops
from tests.utils import api, make_user
from tests.utils.oidc import ISSUER, fresh_keys, make_client, oauth_tokens
from tests.utils.proxy import tcp_proxy
from tests.utils.server import running_server

__all__ = ["fresh_keys", "statements", "thread_hops"]  # fixtures, used by name

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
    """An OAuth access token's signature is checked with cryptography on the cached key:
    python-jose's tokens pass, and whatever python-jose refuses is refused too."""
    pem, _ = generate_private_key(algorithm)
    (tmp_path / "oidc.pem").write_bytes(pem)
    settings(OIDC_SIGNING_KEY_FILE=tmp_path / "oidc.pem")
    if algorithm == "RS256":
        token, jti, exp, _ = client_access_token("a-client", "roles")
    else:  # access tokens are RS256; one signed by the ES256 key verifies all the same
        jti, exp = "a-jti", int(time.time()) + 60
        issuer = get_settings().PUBLIC_URL
        body = {"iss": issuer, "aud": issuer, "sub": "a-client", "client_id": "a-client"}
        body |= {"scope": "roles", "jti": jti, "iat": exp - 60, "exp": exp}
        token = sign_oidc_jwt(body, typ=OAUTH_ACCESS_TYPE, algorithm="ES256")
    key = signing_key(algorithm)
    claims = decode(token, TokenKind.OAUTH_ACCESS)
    assert (claims.sub, claims.client_id, claims.jti, claims.sid) == ("a-client",) * 2 + (jti, None)
    assert int(claims.exp.timestamp()) == exp

    header, payload, signature = token.split(".")
    other_pem, _ = generate_private_key(algorithm)
    other = serialization.load_pem_private_key(other_pem, password=None)
    forged = jose_jwt.encode(
        json.loads(base64.urlsafe_b64decode(payload + "==")),
        other,  # type: ignore[arg-type]
        algorithm=algorithm,
        headers={"kid": key.kid, "typ": "at+jwt"},
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
            jws.verify(bad, key.verifier, [algorithm])
        with pytest.raises(InvalidToken):
            decode(bad, TokenKind.OAUTH_ACCESS)
    # Stricter than python-jose, whose base64 decoding takes padding (RFC 7515 §2 has none;
    # no token of this service has any): another spelling of a signature is not one.
    padded = f"{header}.{payload}.{signature}="
    assert jws.verify(padded, key.verifier, [algorithm])
    with pytest.raises(InvalidToken):
        decode(padded, TokenKind.OAUTH_ACCESS)


# --- introspection on the read path --------------------------------------------------------

SERVICE = {"name": "Nightly job", "redirect_uris": [], "grant_types": ["client_credentials"]}


@pytest.fixture
def resource_server(db: Session) -> ClientCreated:
    """The confidential client that introspects (a resource server)."""
    return make_client(db, name="Orders API", redirect_uris=[], grant_types=["refresh_token"])


def introspect(
    client: TestClient, registered: ClientCreated, token: str, *, post: bool = False
) -> Any:
    """One introspection by `registered`, with Basic or (`post`) client_secret_post."""
    secret = str(registered.client_secret)
    if post:
        form = {"token": token, "client_id": registered.client_id, "client_secret": secret}
        response = client.post(INTROSPECT, data=form)
    else:
        response = client.post(
            INTROSPECT, data={"token": token}, auth=(registered.client_id, secret)
        )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def client_token(client: TestClient, registered: ClientCreated) -> str:
    response = client.post(
        TOKEN_ENDPOINT,
        data={"grant_type": "client_credentials"},
        auth=(registered.client_id, str(registered.client_secret)),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.mark.parametrize("post", [False, True], ids=["basic", "client_secret_post"])
def test_introspection_is_one_select_on_the_loop_and_writes_nothing(
    client: TestClient,
    db: Session,
    user: User,
    resource_server: ClientCreated,
    statements: list[str],
    thread_hops: list[object],
    post: bool,
) -> None:
    tokens = oauth_tokens(client, db, user)
    service = client_token(client, make_client(db, **SERVICE))
    for token in (tokens["access_token"], tokens["refresh_token"], service):
        statements.clear()
        thread_hops.clear()
        assert introspect(client, resource_server, token, post=post)["active"] is True
        assert len(statements) == 1, statements  # the client and the token's row
        assert all(s.lstrip().upper().startswith("SELECT") for s in statements), statements
        assert thread_hops == []  # on the event loop, on SQLite and PostgreSQL alike


def test_every_change_to_a_session_shows_at_the_next_introspection(
    client: TestClient, db: Session, user: User, resource_server: ClientCreated
) -> None:
    """Nothing is cached: expiry, deactivation and reactivation show at once, for the access
    and the refresh token of an OAuth session."""
    tokens = oauth_tokens(client, db, user)
    both = (tokens["access_token"], tokens["refresh_token"])
    original = db.exec(
        select(AuthSession).where(
            col(AuthSession.user_id) == user.id, col(AuthSession.kind) == SessionKind.OAUTH
        )
    ).one()
    expires_at = original.expires_at

    def set_session(**values: Any) -> None:
        db.exec(update(AuthSession).where(col(AuthSession.id) == original.id).values(**values))
        db.commit()

    def set_user(**values: Any) -> None:
        db.exec(update(User).where(col(User.id) == user.id).values(**values))
        db.commit()

    assert all(introspect(client, resource_server, t)["active"] for t in both)
    set_session(expires_at=utcnow() - timedelta(seconds=1))
    assert all(introspect(client, resource_server, t) == {"active": False} for t in both)
    set_session(expires_at=expires_at)
    set_user(is_active=False)
    assert all(introspect(client, resource_server, t) == {"active": False} for t in both)
    set_user(is_active=True)
    assert all(introspect(client, resource_server, t)["active"] for t in both)
    set_session(revoked_at=utcnow())
    assert all(introspect(client, resource_server, t) == {"active": False} for t in both)


def test_a_client_token_row_decides_at_once_and_must_be_that_client_own(
    client: TestClient, db: Session, resource_server: ClientCreated
) -> None:
    service = make_client(db, **SERVICE)
    token = client_token(client, service)
    jti = decode(token, TokenKind.OAUTH_ACCESS).jti

    def set_row(**values: Any) -> None:
        db.exec(update(ClientToken).where(col(ClientToken.jti) == jti).values(**values))
        db.commit()

    assert introspect(client, resource_server, token)["active"] is True
    set_row(expires_at=utcnow() - timedelta(seconds=1))
    assert introspect(client, resource_server, token) == {"active": False}
    set_row(expires_at=utcnow() + timedelta(minutes=5))
    assert introspect(client, resource_server, token)["active"] is True
    other = make_client(db, **SERVICE)
    set_row(client_id=other.client_id)  # the row is another client's: not this token's
    assert introspect(client, resource_server, token) == {"active": False}
    set_row(client_id=service.client_id)
    revoked = client.post(
        REVOKE, data={"token": token}, auth=(service.client_id, str(service.client_secret))
    )
    assert revoked.status_code == 200
    assert introspect(client, resource_server, token) == {"active": False}


def test_a_signed_token_must_match_its_session_row(
    client: TestClient, db: Session, user: User, resource_server: ClientCreated
) -> None:
    """An access token names its session, user and client: all three must be the row's."""
    tokens = oauth_tokens(client, db, user)
    claims = json.loads(base64.urlsafe_b64decode(tokens["access_token"].split(".")[1] + "=="))
    other = make_client(db, name="Another app")
    stranger = make_user(db)
    for changed in (
        {},
        {"client_id": other.client_id},
        {"sub": str(stranger.id)},
        {"sid": str(uuid.uuid4())},
    ):
        token = sign_oidc_jwt({**claims, **changed}, typ=OAUTH_ACCESS_TYPE)
        assert introspect(client, resource_server, token)["active"] is (not changed), changed


def test_a_signed_token_with_an_impossible_expiry_is_refused_not_a_500(
    client: TestClient, db: Session, user: User, resource_server: ClientCreated
) -> None:
    """An expiry past year 9999 cannot become a datetime: 401 and inactive, never a 500."""
    tokens = oauth_tokens(client, db, user)
    claims = json.loads(base64.urlsafe_b64decode(tokens["access_token"].split(".")[1] + "=="))
    token = sign_oidc_jwt({**claims, "exp": 10**15}, typ=OAUTH_ACCESS_TYPE)
    with pytest.raises(InvalidToken):
        decode(token, TokenKind.OAUTH_ACCESS)
    assert (
        client.get(api("/users/me"), headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    assert (
        client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    assert introspect(client, resource_server, token) == {"active": False}


def test_the_introspecting_client_is_authenticated_at_every_request(
    client: TestClient, db: Session, user: User, admin_headers: dict[str, str]
) -> None:
    """Its credentials are read again each time: a rotated secret or a deleted client is
    refused at once; public clients, mixed methods and mismatched ids as before."""
    tokens = oauth_tokens(client, db, user)
    form = {"token": tokens["access_token"]}
    rs = make_client(db, name="Orders API", redirect_uris=[], grant_types=["refresh_token"])
    old = (rs.client_id, str(rs.client_secret))
    assert client.post(INTROSPECT, data=form, auth=old).json()["active"] is True

    rotated = client.post(api(f"/clients/{rs.client_id}/secret"), headers=admin_headers)
    new = (rs.client_id, rotated.json()["client_secret"])
    refused = client.post(INTROSPECT, data=form, auth=old)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert refused.headers["www-authenticate"].startswith("Basic")
    posted_old = client.post(
        INTROSPECT, data={**form, "client_id": old[0], "client_secret": old[1]}
    )
    assert posted_old.status_code == 401
    assert not posted_old.headers.get("www-authenticate", "").startswith("Basic")
    assert client.post(INTROSPECT, data=form, auth=new).json()["active"] is True

    both = client.post(INTROSPECT, data={**form, "client_secret": new[1]}, auth=new)
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    other_id = client.post(INTROSPECT, data={**form, "client_id": "someone"}, auth=new)
    assert other_id.status_code == 401 and other_id.json()["error"] == "invalid_client"
    public = make_client(db, public=True, name="SPA")
    as_basic = client.post(INTROSPECT, data=form, auth=(public.client_id, ""))
    assert as_basic.status_code == 401 and as_basic.headers["www-authenticate"].startswith("Basic")
    with_secret = client.post(
        INTROSPECT, data={**form, "client_id": public.client_id, "client_secret": "x"}
    )
    assert with_secret.status_code == 401 and with_secret.json()["error"] == "invalid_client"
    too_long = client.post(INTROSPECT, data=form, auth=("x" * 65, new[1]))
    assert too_long.status_code == 401

    assert client.delete(api(f"/clients/{rs.client_id}"), headers=admin_headers).is_success
    gone = client.post(INTROSPECT, data=form, auth=new)
    assert gone.status_code == 401 and gone.json()["error"] == "invalid_client"


# --- a database that fails ---------------------------------------------------------------


def failing_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The prepared reads fail as a lost database makes them (SQLAlchemy's OperationalError)."""

    def lost(*_args: Any) -> Any:
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    async def lost_async(*_args: Any) -> Any:
        lost()

    monkeypatch.setattr(PreparedRead, "first", lost)
    monkeypatch.setattr(AsyncReadPool, "first", lost_async)


@pytest.mark.parametrize("endpoint", [INTROSPECT, REVOKE])
@pytest.mark.parametrize("kind", ["access_token", "refresh_token", "client token", "no token"])
def test_a_database_failure_at_introspection_or_revocation_answers_503(
    client: TestClient, db: Session, user: User, endpoint: str, kind: str
) -> None:
    tokens = oauth_tokens(client, db, user, grant_types=["authorization_code", "refresh_token",
                                                         "client_credentials"])  # fmt: skip
    registered = tokens["registered"]
    auth = (registered.client_id, str(registered.client_secret))
    token = {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "client token": client_token(client, registered),
        "no token": "not-a-token",
    }[kind]
    with pytest.MonkeyPatch.context() as patch:
        failing_reads(patch)
        response = client.post(endpoint, data={"token": token}, auth=auth)
    assert response.status_code == 503, response.text
    assert set(response.json()) == {"detail"} and "retry-after" in response.headers
    assert "OperationalError" not in response.text and "server closed" not in response.text
    assert client.post(endpoint, data={"token": token}, auth=auth).status_code == 200


needs_postgresql = pytest.mark.skipif(
    get_settings().is_sqlite, reason="needs PostgreSQL (TEST_DATABASE_URL): a proxy cuts it"
)


@needs_postgresql
def test_introspection_during_a_postgresql_outage_answers_503_and_recovers(
    db: Session, tmp_path: Path
) -> None:
    url = make_url(get_settings().DATABASE_URL)
    service = make_client(db, **SERVICE)
    rs = make_client(db, name="Orders API", redirect_uris=[], grant_types=["refresh_token"])
    log = tmp_path / "server.log"
    with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        with running_server({"DATABASE_URL": through}, log_path=log) as base:
            token = httpx.post(
                f"{base}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(service.client_id, str(service.client_secret)),
                timeout=30,
            ).json()["access_token"]
            auth = (rs.client_id, str(rs.client_secret))

            def ask() -> httpx.Response:
                return httpx.post(
                    f"{base}/oauth/introspect", data={"token": token}, auth=auth, timeout=30
                )

            assert ask().json()["active"] is True
            proxy.cut()
            cut = ask()
            assert cut.status_code == 503, cut.text
            assert set(cut.json()) == {"detail"} and "retry-after" in cut.headers
            proxy.restore()
            assert ask().json()["active"] is True
    assert "Traceback" not in log.read_text(errors="replace")
