"""What production refuses to start with: a guessable SECRET_KEY, CORS `*`, a low bcrypt
cost, link bases on this machine, metrics without a token. And /metrics behind its token."""

import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.core.config import MIN_SECRET_BITS, Settings, describe, estimated_entropy_bits
from tests.utils.production import PRODUCTION


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Settings production accepts, read from an empty directory (no `.env`)."""
    monkeypatch.chdir(tmp_path)
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def refusal() -> str:
    """The one-line refusal of Settings() in the current environment."""
    with pytest.raises(ValidationError) as error:
        Settings(SECRET_KEY_FILE=Path("unused-secret"))
    message = describe(error.value)
    assert "\n" not in message
    return message


def apply(monkeypatch: pytest.MonkeyPatch, **values: str | None) -> None:
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def test_the_production_baseline_is_accepted(production: pytest.MonkeyPatch) -> None:
    accepted = Settings()
    assert PRODUCTION["METRICS_TOKEN"] == accepted.METRICS_TOKEN


@pytest.mark.parametrize(
    "secret",
    [
        "a" * 64,
        "ab" * 32,
        "0123456789" * 4,
        "0123456789abcdef" * 4,
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        "k" * 32,
        "correcthorsebatterystaple" * 2,
        "test-test-test-test-test-test-test-test",
    ],
    ids=lambda s: s[:12],
)
def test_production_refuses_a_guessable_secret_key(
    production: pytest.MonkeyPatch, secret: str
) -> None:
    assert len(secret.encode()) >= 32  # long enough: refused for its entropy
    production.setenv("SECRET_KEY", secret)
    assert "SECRET_KEY" in refusal()


def test_openssl_rand_hex_32_always_passes_the_entropy_estimate() -> None:
    scores = [estimated_entropy_bits(secrets.token_hex(32)) for _ in range(500)]
    assert min(scores) > 1.5 * MIN_SECRET_BITS


@pytest.mark.parametrize(
    "origins", ["*", "https://app.example.com,*", '["https://app.example.com", "*"]']
)
def test_production_refuses_cors_star(production: pytest.MonkeyPatch, origins: str) -> None:
    production.setenv("BACKEND_CORS_ORIGINS", origins)
    assert "BACKEND_CORS_ORIGINS" in refusal()


@pytest.mark.parametrize("rounds", ["4", "9"])
def test_production_refuses_a_bcrypt_cost_below_10(
    production: pytest.MonkeyPatch, rounds: str
) -> None:
    production.setenv("BCRYPT_ROUNDS", rounds)
    assert "BCRYPT_ROUNDS" in refusal()


def test_production_accepts_a_bcrypt_cost_of_10(production: pytest.MonkeyPatch) -> None:
    production.setenv("BCRYPT_ROUNDS", "10")
    assert Settings().BCRYPT_ROUNDS == 10


def test_production_refuses_argon2id_below_19_mib(production: pytest.MonkeyPatch) -> None:
    production.setenv("PASSWORD_HASH", "argon2id")
    production.setenv("ARGON2_MEMORY_COST", "19455")
    production.setenv("ARGON2_PARALLELISM", "1")
    assert "ARGON2_MEMORY_COST" in refusal()
    production.setenv("ARGON2_MEMORY_COST", "19456")
    assert Settings().ARGON2_MEMORY_COST == 19456


def test_argon2_memory_must_hold_8_kib_per_lane(production: pytest.MonkeyPatch) -> None:
    production.setenv("ARGON2_MEMORY_COST", "31")
    production.setenv("ARGON2_PARALLELISM", "4")
    assert "8 KiB per lane" in refusal()


LOOPBACK = [
    "http://localhost:3000",
    "https://LOCALHOST",
    "http://app.localhost:8080",
    "http://127.0.0.1:8000",
    "http://127.8.9.10",
    "http://[::1]:8000",
    "http://[::ffff:127.0.0.1]",
    "http://0.0.0.0:8000",
]


@pytest.mark.parametrize("name", ["PUBLIC_URL", "FRONTEND_URL"])
@pytest.mark.parametrize("url", LOOPBACK)
def test_production_refuses_link_bases_on_this_machine(
    production: pytest.MonkeyPatch, name: str, url: str
) -> None:
    production.setenv(name, url)
    assert name in refusal()


@pytest.mark.parametrize("value", [None, ""])
def test_production_without_a_frontend_links_to_the_hosted_pages(
    production: pytest.MonkeyPatch, value: str | None
) -> None:
    apply(production, FRONTEND_URL=value)
    assert Settings().FRONTEND_URL is None


@pytest.mark.parametrize("url", ["https://auth.example.com", "http://10.0.0.5:8000"])
def test_production_accepts_other_link_bases(production: pytest.MonkeyPatch, url: str) -> None:
    production.setenv("PUBLIC_URL", url)
    accepted = Settings()
    assert url == accepted.PUBLIC_URL


@pytest.mark.parametrize("token", [None, "", "short-token"])
def test_production_with_metrics_needs_a_metrics_token(
    production: pytest.MonkeyPatch, token: str | None
) -> None:
    apply(production, METRICS_TOKEN=token)
    assert "METRICS_TOKEN" in refusal()


def test_production_without_metrics_needs_no_token(production: pytest.MonkeyPatch) -> None:
    apply(production, METRICS_TOKEN=None, METRICS_ENABLED="false")
    assert Settings().METRICS_TOKEN is None


def test_development_keeps_its_easy_defaults(production: pytest.MonkeyPatch) -> None:
    apply(
        production,
        ENVIRONMENT="development",
        SECRET_KEY="a" * 32,
        BCRYPT_ROUNDS="4",
        BACKEND_CORS_ORIGINS="*",
        PUBLIC_URL=None,
        FRONTEND_URL=None,
        METRICS_TOKEN=None,
    )
    settings = Settings()
    assert settings.BACKEND_CORS_ORIGINS == ["*"]
    assert settings.FRONTEND_URL is None  # the hosted pages


def test_starting_production_with_cors_star_exits_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import app.main"],
        capture_output=True,
        text=True,
        env={**os.environ, **PRODUCTION, "BACKEND_CORS_ORIGINS": "*"},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "BACKEND_CORS_ORIGINS" in line


def test_metrics_need_the_bearer_token_when_one_is_set(
    client: TestClient, settings: Callable[..., Settings]
) -> None:
    token = PRODUCTION["METRICS_TOKEN"]
    settings(METRICS_TOKEN=token)

    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {token}x"},
        {"Authorization": f"Bearer {token[:-1]}"},
        {"Authorization": f"Basic {token}"},
        {"Authorization": token},
        {"Authorization": "Bearer "},
    ):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "http_requests_total" not in refused.text

    allowed = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200
    assert "http_requests_total" in allowed.text
    assert client.get("/metrics", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_metrics_are_open_without_a_token_outside_production(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 200
