"""Metrics and structured logs."""

import json
import logging
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.models.user import User
from tests.utils import PASSWORD, api
from tests.utils.server import running_server


def test_metrics_count_requests_and_logins(client: TestClient, user: User) -> None:
    client.post(api("/auth/login"), data={"username": user.email, "password": PASSWORD})
    client.post(api("/auth/login"), data={"username": user.email, "password": "wrong-pass"})
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    login_lines = [
        line
        for line in text.splitlines()
        if line.startswith("http_requests_total{") and 'auth/login",status="200"' in line
    ]
    assert login_lines and float(login_lines[0].rsplit(" ", 1)[1]) >= 1
    assert 'auth_logins_total{outcome="succeeded"}' in text
    assert 'auth_logins_total{outcome="failed"}' in text
    assert "http_request_duration_seconds_bucket" in text


def test_metrics_can_be_disabled(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    settings(METRICS_ENABLED=False)
    assert client.get("/metrics").status_code == 404


def test_json_logs_are_one_object_a_line_with_the_request_id(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    env = {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "ACCESS_LOG": "true"}
    with running_server(env, log_path=log_path) as base:
        httpx.get(f"{base}/health", headers={"X-Request-ID": "req-42"})
        answer = httpx.get(f"{base}/health/ready")
        made_id = answer.headers["x-request-id"]
        assert "server" not in answer.headers  # uvicorn does not name itself
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [e for e in entries if e["logger"] == "app.access"]
    assert any(e["request_id"] == "req-42" and e["route"] == "/health" for e in access)
    assert any(e["request_id"] == made_id and e["status"] == 200 for e in access)


def test_no_access_lines_unless_asked_for(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        assert client.get("/health").status_code == 200
        assert client.get("/nowhere").status_code == 404
    assert not [r for r in caplog.records if r.name == "app.access"]
