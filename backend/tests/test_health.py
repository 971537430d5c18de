"""/health (liveness) and /health/ready (readiness), outside the API prefix."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from app.api import ops
from app.core.config import get_settings


def test_health_answers_ok(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_does_not_touch_the_database(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(ops, "ping", unreachable)
    assert client.get("/health").status_code == 200


def test_ready_reports_the_database_and_version(client: TestClient) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    expected = {"status": "ok", "database": "ok", "version": get_settings().VERSION}
    if get_settings().REDIS_URL:  # Redis is named too when it is configured
        expected["redis"] = "ok"
    assert response.json() == expected


def test_ready_is_503_naming_the_database_when_it_is_unreachable(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(ops, "ping", unreachable)
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] != "ok"
    assert body["database"] != "ok"
    assert "connection refused" not in response.text


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
def test_health_needs_no_credentials_and_lives_outside_the_api_prefix(
    client: TestClient, path: str
) -> None:
    assert client.get(path, headers={"Authorization": "Bearer garbage"}).status_code == 200
    assert client.get(get_settings().API_V1_STR + path).status_code == 404
