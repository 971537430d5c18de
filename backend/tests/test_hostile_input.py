"""Huge and hostile input: bodies over the limit, absurd headers, tokens, URLs, deep or
malformed JSON, characters a database cannot hold. Each gets a 4xx (never a 500), and the
service stays healthy.

What the in-process client cannot show (a body refused before it is read whole, headers far
past what an HTTP client will send) is shown against a real server over raw sockets.
"""

import socket
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.api.middleware import MAX_HEADER_BYTES, MAX_URL_BYTES
from app.core.config import get_settings
from app.models.user import User
from tests.utils import PASSWORD, api, make_user, random_email
from tests.utils.server import running_server

KIB = 1024
MIB = 1024 * KIB
SERVER_BODY_LIMIT = 4 * KIB  # MAX_BODY_BYTES of the real server below

# -- in process ----------------------------------------------------------------------------


def test_url_over_the_limit_gets_414(client: TestClient) -> None:
    assert client.get("/health", params={"x": "a" * MAX_URL_BYTES}).status_code == 414
    response = client.get(api("/users"), params={"q": "a" * (MAX_URL_BYTES // 2)})
    assert response.status_code == 401  # under the URL limit: the usual answers
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Padding": "a" * (MAX_HEADER_BYTES + 1)},
        {"Authorization": "Bearer " + "a" * 100 * KIB},
        {f"X-Many-{i}": "a" * 64 for i in range(MAX_HEADER_BYTES // 64)},
    ],
    ids=["one-long-header", "100-KiB-token", "many-headers"],
)
def test_headers_over_the_limit_get_431(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get(api("/users/me"), headers=headers)
    assert response.status_code == 431
    assert response.json() == {"detail": "Request header fields too large"}
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("length", [16 * KIB, 20 * KIB])
def test_long_garbage_tokens_under_the_header_limit_get_401(
    client: TestClient, length: int
) -> None:
    for token in ("a" * length, "e" + "." * length, "eyJ" * (length // 3)):
        response = client.get(api("/users/me"), headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    refresh = client.post(api("/auth/refresh"), json={"refresh_token": "a" * length})
    assert refresh.status_code in (401, 422)


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        '{"email": "a@example.com", "password": ' + "9" * 5000 + "}",
        '{"email": "a@example.com", "password": "unterminated',
        "\xff\xfe not utf-8",
    ],
    ids=["deep-array", "deep-object", "huge-number", "truncated", "not-utf8"],
)
def test_malformed_json_gets_400_or_422(client: TestClient, body: str) -> None:
    response = client.post(
        api("/auth/register"),
        content=body.encode("latin-1") if body.startswith("\xff") else body.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422), response.text
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    "raw_body",
    [
        b'{"email": "a@example.com", "password": "abc\\ud800defghij"}',
        b'{"email": "a\\ud800@example.com", "password": "abcdefghijk"}',
        b'{"email": "b@example.com", "password": "abcdefghijk", "full_name": "\\udfff"}',
    ],
    ids=["password", "email", "full-name"],
)
def test_lone_surrogates_get_422(client: TestClient, raw_body: bytes) -> None:
    response = client.post(
        api("/auth/register"), content=raw_body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    response.content.decode("utf-8")  # the answer itself is valid UTF-8


def test_validation_errors_never_echo_a_password(client: TestClient) -> None:
    secret = "s3cr"  # too short: refused, and must not come back
    for body in (
        {"email": "a@example.com", "password": secret},
        {"email": "not-an-email", "password": secret + "-long-enough"},
        {"email": "a@example.com", "password": secret + "\x00-long-enough"},
    ):
        response = client.post(api("/auth/register"), json=body)
        assert response.status_code == 422
        assert secret not in response.text
        assert "input" not in response.json()["detail"][0]


def test_nul_characters_are_refused_not_stored(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    register = client.post(
        api("/auth/register"),
        json={"email": random_email(), "password": PASSWORD, "full_name": "a\x00b"},
    )
    assert register.status_code == 422
    patch = client.patch(api("/users/me"), json={"full_name": "a\x00b"}, headers=user_headers)
    assert patch.status_code == 422
    login = client.post(
        api("/auth/login"), data={"username": "a\x00b@example.com", "password": "x"}
    )
    assert login.status_code in (400, 401)  # PostgreSQL refuses NUL in text: 400; SQLite: 401


def test_too_many_form_fields_get_400(client: TestClient) -> None:
    body = "&".join(f"f{i}=1" for i in range(5000))
    response = client.post(
        api("/auth/login"),
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400


# -- a real server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server({"MAX_BODY_BYTES": str(SERVER_BODY_LIMIT)}) as base:
        yield base


def raw_request(base: str, head: bytes, body: Iterable[bytes] = ()) -> tuple[int, bytes]:
    """Send `head` (and whatever of `body` the server takes) on one connection; read one
    answer. A server that waited for more than it was sent would leave this to time out."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head)
        for chunk in body:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed: read its answer
        received = b""
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            if not data:
                break
            received += data
    status_line, _, _ = received.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 "), received[:200]
    return int(status_line.split()[1]), received


def assert_healthy(base: str, user: User) -> None:
    assert httpx.get(f"{base}/health", timeout=30).status_code == 200
    assert httpx.get(f"{base}/health/ready", timeout=30).status_code == 200
    login = httpx.post(
        f"{base}{api('/auth/login')}",
        data={"username": user.email, "password": PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200, login.text


def test_declared_huge_body_is_refused_before_it_is_sent(server: str, db: Session) -> None:
    """Content-Length says 10 GiB; the client sends 100 bytes and waits: 413 comes at once."""
    head = (
        f"POST {api('/auth/register')} HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: application/json\r\nContent-Length: {10 * 1024 * MIB}\r\n\r\n"
    ).encode()
    status, received = raw_request(server, head, [b"{" + b" " * 99])
    assert status == 413, received[:300]
    assert_healthy(server, make_user(db))


def test_configured_body_limit(server: str, db: Session) -> None:
    url = f"{server}{api('/auth/register')}"
    padding = {"email": random_email(), "password": PASSWORD, "full_name": ""}
    over = httpx.post(url, json={**padding, "x": "a" * SERVER_BODY_LIMIT}, timeout=30)
    assert over.status_code == 413
    under = httpx.post(url, json={**padding, "x": "a" * (SERVER_BODY_LIMIT - 200)}, timeout=30)
    assert under.status_code == 201, under.text  # unknown fields are ignored
    assert_healthy(server, make_user(db))


def test_streamed_body_is_refused_once_past_the_limit(server: str, db: Session) -> None:
    """A chunked body with no declared length, never finished: the answer comes as soon as
    the limit is passed, not when the body ends (it never does)."""
    head = (
        f"POST {api('/auth/register')} HTTP/1.1\r\nHost: test\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"400\r\n" + b" " * KIB + b"\r\n"  # 1 KiB chunks, no final 0-length chunk
    status, received = raw_request(server, head, [chunk] * (2 * SERVER_BODY_LIMIT // KIB))
    assert status == 413, received[:300]
    assert_healthy(server, make_user(db))


# The service refuses URLs over MAX_URL_BYTES (414); from 64 KiB on, uvicorn's HTTP parser
# refuses them itself (400) before the service sees them. Headers of any length reach it.
@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"GET /health?x=" + b"a" * 60 * KIB + b" HTTP/1.1\r\nHost: t\r\n\r\n", {414}),
        (b"GET /health?x=" + b"a" * 100 * KIB + b" HTTP/1.1\r\nHost: t\r\n\r\n", {400, 414}),
        (b"GET /" + b"a" * MIB + b" HTTP/1.1\r\nHost: t\r\n\r\n", {400, 414}),
        (b"GET /health HTTP/1.1\r\nHost: t\r\nX-Padding: " + b"a" * MIB + b"\r\n\r\n", {431}),
        (
            b"GET /api/v1/users/me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
            + b"a" * 100 * KIB
            + b"\r\n\r\n",
            {431},
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: t\r\n"
            + b"".join(b"X-H-%d: v\r\n" % i for i in range(10_000))
            + b"\r\n",
            {431},
        ),
    ],
    ids=[
        "60-KiB-query",
        "100-KiB-query",
        "1-MiB-path",
        "1-MiB-header",
        "100-KiB-token",
        "10000-headers",
    ],
)
def test_absurd_request_lines_and_headers_get_4xx(
    server: str, db: Session, head: bytes, expected: set[int]
) -> None:
    status, received = raw_request(server, head)
    assert status in expected, received[:300]
    assert_healthy(server, make_user(db))


def test_api_prefix_is_the_one_configured() -> None:
    assert api("") == get_settings().API_V1_STR  # the raw requests above spell it out
    assert get_settings().API_V1_STR == "/api/v1"
