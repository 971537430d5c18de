"""Migrations are the schema: applied to an empty database they give exactly the models."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, inspect
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers every table)
from alembic import command
from app.db import get_engine
from app.migrations import alembic_config

TABLES = set(SQLModel.metadata.tables)


def config_on(connection: Connection) -> Config:
    """The service's Alembic configuration, run on `connection` instead of DATABASE_URL."""
    config = alembic_config()
    config.attributes["connection"] = connection
    return config


def differences(connection: Connection) -> list[Any]:
    """What autogenerate would write to bring the database to the models; [] when equal."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, SQLModel.metadata)


def head() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"
    return heads[0]


def migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as connection:
        (command.downgrade if down else command.upgrade)(config_on(connection), revision)


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@pytest.fixture
def empty_sqlite(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    yield engine
    engine.dispose()


def test_migrations_have_a_single_head() -> None:
    assert head()


def test_upgrade_of_an_empty_database_matches_the_models(empty_sqlite: Engine) -> None:
    migrate(empty_sqlite, "head")
    with empty_sqlite.connect() as connection:
        assert differences(connection) == []
        assert set(inspect(connection).get_table_names()) == TABLES | {"alembic_version"}
        assert current_revision(connection) == head()


def test_downgrade_to_base_then_upgrade_to_head(empty_sqlite: Engine) -> None:
    migrate(empty_sqlite, "head")
    migrate(empty_sqlite, "base", down=True)
    with empty_sqlite.connect() as connection:
        assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
        assert current_revision(connection) is None

    migrate(empty_sqlite, "head")
    with empty_sqlite.connect() as connection:
        assert differences(connection) == []
        assert current_revision(connection) == head()


def test_the_test_database_migrated_by_conftest_matches_the_models() -> None:
    """On PostgreSQL (TEST_DATABASE_URL) this checks the PostgreSQL schema."""
    with get_engine().connect() as connection:
        try:
            assert differences(connection) == []
            assert current_revision(connection) == head()
        finally:
            connection.rollback()
