"""Run Alembic from code (the CLI and the tests), with the service's settings."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.config import Config
from sqlalchemy import text

from alembic import command

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
STARTUP_LOCK_KEY = 0x61757468737663  # any fixed 64-bit number, the same on every host


def alembic_config() -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["configure_logging"] = False
    return config


def upgrade_to_head() -> None:
    command.upgrade(alembic_config(), "head")


@contextmanager
def startup_lock() -> Iterator[None]:
    """Let one host at a time migrate and create the first admin: hosts that start together on
    one PostgreSQL database wait for each other (a session advisory lock) instead of racing
    to create the same tables and the same admin. SQLite is one host's file: nothing to do."""
    from app.db import get_engine

    engine = get_engine()
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": STARTUP_LOCK_KEY})
        connection.commit()  # the lock is the session's: no transaction stays open meanwhile
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": STARTUP_LOCK_KEY})
            connection.commit()
