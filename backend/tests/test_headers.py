"""Security headers, no-store on token answers, CORS, body size limit, request ids."""

from fastapi.testclient import TestClient

from app.models.user import User
from tests.utils import PASSWORD, api


def test_security_headers_on_an_ordinary_answer(client: TestClient) -> None:
    response = client.get("/health")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_token_answers_are_not_stored(client: TestClient, user: User) -> None:
    response = client.post(api("/auth/login"), data={"username": user.email, "password": PASSWORD})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    refreshed = client.post(
        api("/auth/refresh"), json={"refresh_token": response.json()["refresh_token"]}
    )
    assert refreshed.headers["cache-control"] == "no-store"


def test_cors_preflight_allowed_origin(client: TestClient) -> None:
    response = client.options(
        api("/auth/login"),
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_cors_preflight_refused_origin(client: TestClient) -> None:
    response = client.options(
        api("/auth/login"),
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_answers_vary_by_origin_with_or_without_one(client: TestClient) -> None:
    plain = client.get("/health")
    assert plain.headers["vary"] == "Origin"
    assert "access-control-allow-origin" not in plain.headers
    cross = client.get("/health", headers={"Origin": "http://localhost:3000"})
    assert cross.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert cross.headers.get_list("vary") == ["Origin"]
    assert cross.headers["access-control-expose-headers"]
    stranger = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers
    assert stranger.headers["vary"] == "Origin"


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert (
        client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    made = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert made.headers["x-request-id"] != "bad id\twith spaces"
    assert len(made.headers["x-request-id"]) == 32


def test_body_over_the_limit_is_refused_with_413(client: TestClient) -> None:
    big = "x" * (1_048_576 + 10)
    response = client.post(
        api("/auth/register"),
        content=f'{{"email": "a@example.com", "password": "{big}"}}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_streamed_body_over_the_limit_is_refused_with_413(client: TestClient) -> None:
    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(20):
            yield b"x" * 65_536

    response = client.post(
        api("/auth/register"), content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert client.get("/health").status_code == 200
