"""Settings and start-up: clear refusals, the local development secret, the first superuser."""

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import Session, col, select

from app.bootstrap import BootstrapRefused, ensure_first_superuser
from app.core.config import MIN_SECRET_BYTES, Environment, Settings, describe, get_settings
from app.core.permissions import Role
from app.db import transaction
from app.models.user import User
from tests.utils import login, make_user
from tests.utils.production import PRODUCTION

STRONG_KEY = "498240d8213e680caba1cf264e380208d9f14e4dfe536e30c0e8baba087c192e"  # openssl rand
SHORT_STRONG_KEY = "P3-PUMUnlTd1GnbGW3nejJUMITIk-tW1"  # 32 random url-safe characters
THREADS = 8


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """The test environment, run from an empty directory (so no `.env` is read)."""
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def start(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=os.environ | env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


IMPORT_APP = [sys.executable, "-c", "import app.main"]
MANAGE_SERVE = [str(Path(sys.executable).parent / "manage"), "serve", "--port", "1"]


@pytest.mark.parametrize("command", [IMPORT_APP, MANAGE_SERVE], ids=["import-app", "manage-serve"])
def test_production_start_with_a_short_secret_key_exits_with_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    result = start(command, tmp_path, ENVIRONMENT="production", SECRET_KEY="short")
    assert "SECRET_KEY" in one_line(result)
    assert not (tmp_path / ".secret_key").exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [("ACCESS_TOKEN_EXPIRE_MINUTES", "abc"), ("DATABASE_URL", "mysql://x")],
)
def test_start_with_a_bad_value_exits_with_one_line_naming_it(
    tmp_path: Path, name: str, value: str
) -> None:
    assert name in one_line(start(IMPORT_APP, tmp_path, **{name: value}))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ACCESS_TOKEN_EXPIRE_MINUTES", "abc"),
        ("ACCESS_TOKEN_EXPIRE_MINUTES", "0"),
        ("REFRESH_TOKEN_EXPIRE_DAYS", "1.5"),
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://localhost:6379"),
        ("BACKEND_CORS_ORIGINS", "[not json"),
        ("BACKEND_CORS_ORIGINS", "javascript:alert(1)"),
        ("BACKEND_CORS_ORIGINS", "https://app.example.com/path"),
        ("BACKEND_CORS_ORIGINS", "https://user@app.example.com"),
        ("WEBAUTHN_ORIGINS", "https://app.example.com:99999"),
        ("WEBAUTHN_ORIGINS", "app.example.com"),
        ("ENVIRONMENT", "staging"),
        ("ALGORITHM", "none"),
        ("BCRYPT_ROUNDS", "3"),
        ("LOG_LEVEL", "LOUD"),
        ("USERS_OPEN_REGISTRATION", "perhaps"),
        ("REFRESH_REUSE_GRACE_SECONDS", "-1"),
        ("PASSWORD_MIN_LENGTH", "100"),
        ("RATE_LIMIT_PASSKEY_OPTIONS", "often"),
        ("RATE_LIMIT_LOGIN", "5 a minute"),
    ],
)
def test_get_settings_refuses_a_bad_value_with_one_line_naming_it(
    environ: pytest.MonkeyPatch, name: str, value: str
) -> None:
    environ.setenv(name, value)
    with pytest.raises(SystemExit) as refusal:
        get_settings.__wrapped__()
    message = str(refusal.value.code)
    assert name in message
    assert "\n" not in message


@pytest.mark.parametrize("secret", [None, "", "short", "x" * (MIN_SECRET_BYTES - 1)])
def test_production_refuses_a_missing_or_short_secret_key(
    environ: pytest.MonkeyPatch, tmp_path: Path, secret: str | None
) -> None:
    if secret is None:
        environ.delenv("SECRET_KEY")
    else:
        environ.setenv("SECRET_KEY", secret)
    environ.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValidationError) as error:
        Settings(SECRET_KEY_FILE=tmp_path / "secret")
    assert "SECRET_KEY" in describe(error.value)
    assert not (tmp_path / "secret").exists()


@pytest.mark.parametrize("key", [STRONG_KEY, SHORT_STRONG_KEY])
def test_production_accepts_a_random_secret_key_of_32_bytes_or_more(
    environ: pytest.MonkeyPatch, key: str
) -> None:
    assert len(key.encode()) >= MIN_SECRET_BYTES
    for name, value in PRODUCTION.items():
        environ.setenv(name, value)
    environ.setenv("SECRET_KEY", key)
    accepted = Settings()
    assert key == accepted.SECRET_KEY


@pytest.mark.parametrize("environment", ["development", "test"])
def test_without_secret_key_a_local_secret_is_created_once_with_mode_0600(
    environ: pytest.MonkeyPatch, tmp_path: Path, environment: str
) -> None:
    environ.delenv("SECRET_KEY")
    environ.setenv("ENVIRONMENT", environment)
    path = tmp_path / "secret"

    first = Settings(SECRET_KEY_FILE=path)

    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.SECRET_KEY
    assert len(first.SECRET_KEY.encode()) >= MIN_SECRET_BYTES
    assert path.read_text().strip() == first.SECRET_KEY
    second = Settings(SECRET_KEY_FILE=path)
    assert second.SECRET_KEY == first.SECRET_KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", ["", "\n", "too-short\n"], ids=["empty", "blank", "short"])
def test_an_empty_or_short_local_secret_file_is_refused_naming_it(
    environ: pytest.MonkeyPatch, tmp_path: Path, content: str
) -> None:
    """Never sign tokens with an empty or guessable key."""
    environ.delenv("SECRET_KEY")
    environ.setenv("ENVIRONMENT", "development")
    path = tmp_path / "secret"
    path.write_text(content)
    with pytest.raises(ValidationError) as error:
        Settings(SECRET_KEY_FILE=path)
    assert "SECRET_KEY_FILE" in describe(error.value)


def test_a_local_secret_file_that_cannot_be_created_is_refused_naming_it(
    environ: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environ.delenv("SECRET_KEY")
    environ.setenv("ENVIRONMENT", "development")
    environ.setenv("SECRET_KEY_FILE", str(tmp_path / "missing-dir" / "secret"))
    with pytest.raises(SystemExit) as refusal:
        get_settings.__wrapped__()
    assert "SECRET_KEY_FILE" in str(refusal.value.code)


def test_processes_starting_at_once_share_one_complete_local_secret(
    environ: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environ.delenv("SECRET_KEY")
    environ.setenv("ENVIRONMENT", "development")
    path = tmp_path / "secret"
    barrier = threading.Barrier(THREADS)

    def start_up(_: int) -> str | None:
        barrier.wait()
        return Settings(SECRET_KEY_FILE=path).SECRET_KEY

    with ThreadPoolExecutor(THREADS) as pool:
        keys = set(pool.map(start_up, range(THREADS)))

    assert keys == {path.read_text().strip()}
    assert len(path.read_text().strip()) >= MIN_SECRET_BYTES
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


def test_an_explicit_secret_key_leaves_no_local_secret_file(
    environ: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environ.setenv("ENVIRONMENT", "development")
    explicit = Settings(SECRET_KEY_FILE=tmp_path / "secret")
    assert os.environ["SECRET_KEY"] == explicit.SECRET_KEY
    assert not (tmp_path / "secret").exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('["http://a.io", "https://b.io/"]', ["http://a.io", "https://b.io"]),
        ("http://a.io, https://b.io/", ["http://a.io", "https://b.io"]),
        ("http://a.io", ["http://a.io"]),
        ("", []),
    ],
    ids=["json-list", "comma-separated", "single", "empty"],
)
def test_backend_cors_origins_accepts_json_list_and_comma_separated(
    environ: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    environ.setenv("BACKEND_CORS_ORIGINS", value)
    origins = Settings().BACKEND_CORS_ORIGINS
    assert origins == expected


def test_defaults_of_the_documented_settings(environ: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "BCRYPT_ROUNDS", "ENVIRONMENT", "FIRST_SUPERUSER_EMAIL"):
        environ.delenv(name)
    defaults = Settings()
    assert defaults.API_V1_STR == "/api/v1"
    assert defaults.ALGORITHM == "HS256"
    assert defaults.ACCESS_TOKEN_EXPIRE_MINUTES == 30
    assert defaults.REFRESH_TOKEN_EXPIRE_DAYS == 7
    assert defaults.DATABASE_URL == "sqlite:///./app.db"
    assert defaults.ENVIRONMENT is Environment.DEVELOPMENT
    assert defaults.BCRYPT_ROUNDS == 12
    assert defaults.PASSWORD_MIN_LENGTH == 8
    assert defaults.REFRESH_REUSE_GRACE_SECONDS == 10
    assert defaults.USERS_OPEN_REGISTRATION is True
    assert defaults.MAX_BODY_BYTES == 1_048_576
    assert defaults.RATE_LIMIT_PASSKEY_OPTIONS == "30/minute"


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgresql_urls_are_routed_to_psycopg(environ: pytest.MonkeyPatch, scheme: str) -> None:
    environ.setenv("DATABASE_URL", f"{scheme}://u:p@db:5432/app")
    assert Settings().DATABASE_URL == "postgresql+psycopg://u:p@db:5432/app"


def test_settings_are_read_from_a_dotenv_file(environ: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environ.delenv("PROJECT_NAME", raising=False)
    (tmp_path / ".env").write_text("PROJECT_NAME=From Dotenv\n")
    assert Settings().PROJECT_NAME == "From Dotenv"


# The first superuser


def admins(db: Session) -> list[User]:
    rows = db.exec(select(User).where(col(User.role) == Role.ADMIN)).all()
    db.commit()
    return list(rows)


def test_bootstrap_creates_the_first_admin_from_the_settings(
    client: TestClient, db: Session, settings: Callable[..., Settings]
) -> None:
    settings(FIRST_SUPERUSER_FULL_NAME="Root")
    assert transaction(ensure_first_superuser, db) is None
    [root] = admins(db)
    assert (root.email, root.full_name, root.is_active) == ("root@example.com", "Root", True)
    assert login(client, "root@example.com", "staff-lead-password-9")["access_token"]


def test_bootstrap_in_development_without_password_returns_a_generated_one(
    client: TestClient, db: Session, settings: Callable[..., Settings]
) -> None:
    settings(ENVIRONMENT=Environment.DEVELOPMENT, FIRST_SUPERUSER_PASSWORD=None)
    generated = transaction(ensure_first_superuser, db)
    assert generated
    assert len(generated) >= 16
    [root] = admins(db)
    assert root.email == "root@example.com"
    assert generated not in root.hashed_password
    assert login(client, "root@example.com", generated)["access_token"]


def test_bootstrap_in_production_without_password_is_refused(
    db: Session, settings: Callable[..., Settings]
) -> None:
    settings(ENVIRONMENT=Environment.PRODUCTION, FIRST_SUPERUSER_PASSWORD=None)
    with pytest.raises(BootstrapRefused, match="FIRST_SUPERUSER_PASSWORD"):
        transaction(ensure_first_superuser, db)
    db.rollback()
    assert admins(db) == []


def test_bootstrap_does_nothing_while_an_active_admin_exists(
    db: Session, admin: User, settings: Callable[..., Settings]
) -> None:
    settings(ENVIRONMENT=Environment.PRODUCTION, FIRST_SUPERUSER_PASSWORD=None)
    assert transaction(ensure_first_superuser, db) is None
    db.commit()
    assert [a.id for a in admins(db)] == [admin.id]


def test_bootstrap_creates_an_admin_when_the_only_admin_is_inactive(
    db: Session, user_factory: Callable[..., User]
) -> None:
    user_factory(Role.ADMIN, is_active=False)
    assert transaction(ensure_first_superuser, db) is None
    assert "root@example.com" in {a.email for a in admins(db)}


def test_bootstrap_refuses_when_the_email_belongs_to_a_non_admin(db: Session) -> None:
    make_user(db, email="root@example.com")
    with pytest.raises(BootstrapRefused, match="FIRST_SUPERUSER_EMAIL"):
        transaction(ensure_first_superuser, db)
    db.rollback()
    assert admins(db) == []


def test_bootstrap_refuses_a_weak_password(db: Session, settings: Callable[..., Settings]) -> None:
    settings(FIRST_SUPERUSER_PASSWORD="short")
    with pytest.raises(BootstrapRefused, match="FIRST_SUPERUSER_PASSWORD"):
        transaction(ensure_first_superuser, db)
    db.rollback()
    assert admins(db) == []
