"""One app per test session, a clean database per test, a user and a token per role.

The suite runs on SQLite by default, on PostgreSQL with TEST_DATABASE_URL, and uses Redis
where REDIS_URL is set. Under pytest-xdist each worker is a session of its own, with its own
SQLite file, PostgreSQL database and Redis database (tests/utils/workers.py).
"""

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.utils.workers import worker_database_url, worker_redis_url

TMP = Path(tempfile.mkdtemp(prefix="authsvc-tests-"))
DATABASE_URL = (
    worker_database_url(os.environ.get("TEST_DATABASE_URL")) or f"sqlite:///{TMP}/test.db"
)
if os.environ.get("REDIS_URL"):
    os.environ["REDIS_URL"] = worker_redis_url(os.environ["REDIS_URL"])
os.environ.update(
    {
        "ENVIRONMENT": "test",
        "DATABASE_URL": DATABASE_URL,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SECRET_KEY_FILE": str(TMP / ".secret_key"),
        "BCRYPT_ROUNDS": "4",
        # argon2id at its cheapest, as bcrypt's 4 rounds: what is tested is the flow, not the cost
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST": "64",
        "ARGON2_PARALLELISM": "1",
        "PASSWORD_HASH_WORKERS": "2",
        "FIRST_SUPERUSER_EMAIL": "root@example.com",
        "FIRST_SUPERUSER_PASSWORD": "staff-lead-password-9",
        "LOG_LEVEL": "WARNING",
        "BACKGROUND_JOBS": "false",  # a test that wants the scheduler starts one
    }
)


import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlmodel import Session, SQLModel  # noqa: E402

from app.core import keys, ratelimit  # noqa: E402
from app.core.config import Settings, get_settings  # noqa: E402
from app.core.permissions import Role  # noqa: E402
from app.db import get_engine  # noqa: E402
from app.main import app as fastapi_app  # noqa: E402
from app.migrations import upgrade_to_head  # noqa: E402
from app.models.user import User  # noqa: E402
from tests.utils import PASSWORD, auth_header, login, make_user  # noqa: E402
from tests.utils.oidc import ISSUER  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[None]:
    """An empty database brought to head by the migrations, once per session."""
    engine = get_engine()
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade_to_head()
    yield
    engine.dispose()


@pytest.fixture(autouse=True)
def clean_tables() -> Iterator[None]:
    yield
    ratelimit.reset()
    with get_engine().begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(table.delete())
    keys.forget()  # the next test reads the signing keys it leaves (none staged),
    keys.reload()  # loaded now, as a serving process has them before its requests


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    with TestClient(fastapi_app) as test_client:
        yield test_client


@pytest.fixture
def db() -> Iterator[Session]:
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """`settings(NAME=value, ...)` changes settings for one test."""

    def override(**values: object) -> Settings:
        current = get_settings()
        for name, value in values.items():
            monkeypatch.setattr(current, name, value)
        return current

    return override


@pytest.fixture
def user_factory(db: Session) -> Callable[..., User]:
    def create(role: Role = Role.USER, **kwargs: object) -> User:
        return make_user(db, role=role, **kwargs)

    return create


@pytest.fixture
def admin(user_factory: Callable[..., User]) -> User:
    return user_factory(Role.ADMIN, email="admin@example.com")


@pytest.fixture
def moderator(user_factory: Callable[..., User]) -> User:
    return user_factory(Role.MODERATOR, email="moderator@example.com")


@pytest.fixture
def user(user_factory: Callable[..., User]) -> User:
    return user_factory(Role.USER, email="user@example.com")


@pytest.fixture
def admin_headers(client: TestClient, admin: User) -> dict[str, str]:
    return auth_header(login(client, admin.email, PASSWORD))


@pytest.fixture
def moderator_headers(client: TestClient, moderator: User) -> dict[str, str]:
    return auth_header(login(client, moderator.email, PASSWORD))


@pytest.fixture
def user_headers(client: TestClient, user: User) -> dict[str, str]:
    return auth_header(login(client, user.email, PASSWORD))


from tests.utils.mailbox import Mailbox, SmtpServer, smtp_server  # noqa: E402


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free local port, for the whole session."""
    with smtp_server() as server:
        yield server


@pytest.fixture
def mailbox(smtp: SmtpServer, settings: Callable[..., Settings]) -> Iterator[Mailbox]:
    """Mail goes by SMTP (no TLS) to `smtp`, starting empty; `mailbox.wait()` awaits delivery."""
    smtp.mailbox.clear()
    settings(
        EMAIL_BACKEND="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=smtp.port,
        SMTP_TLS=False,
        SMTP_SSL=False,
        SMTP_USER=None,
        SMTP_PASSWORD=None,
    )
    yield smtp.mailbox
    smtp.mailbox.clear()


@pytest.fixture
def oidc_issuer(settings: Callable[..., Settings]) -> None:
    """PUBLIC_URL as the OIDC tests' issuer (https: the hosted pages' cookies are __Host- and
    Secure); a module takes it with `pytestmark = pytest.mark.usefixtures("oidc_issuer")`."""
    settings(PUBLIC_URL=ISSUER)
