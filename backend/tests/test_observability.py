"""Metrics and structured logs."""

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace

from app.main import create_app
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


class RecordingTracer(trace.NoOpTracer):
    """An OpenTelemetry tracer that only remembers the spans it was asked to start."""

    def __init__(self) -> None:
        self.spans: list[str] = []

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> trace.Span:
        self.spans.append(name)
        return super().start_span(name, *args, **kwargs)

    @contextmanager
    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Iterator[trace.Span]:
        self.spans.append(name)
        yield trace.INVALID_SPAN


class RecordingProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.tracer = RecordingTracer()

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return self.tracer


def test_fastapi_opentelemetry_only_when_asked_for(
    monkeypatch: pytest.MonkeyPatch, settings: Callable[..., Any]
) -> None:
    """OPENTELEMETRY=true hands FastAPI's spans to the process's provider; off (the default),
    FastAPI does not even look for one on each request."""
    provider = RecordingProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    for enabled in (False, True):
        settings(OPENTELEMETRY=enabled)
        with TestClient(create_app()) as client:
            assert client.get("/health").status_code == 200
        assert bool(provider.tracer.spans) is enabled, provider.tracer.spans
