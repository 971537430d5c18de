"""A new SQLite database (password hashes, sessions) and its -wal and -shm files are readable
by their owner only."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.db import create_db_engine


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common umask 022, under which SQLite alone would create files 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("usual_umask")
def test_a_new_database_and_its_side_files_are_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:  # WAL mode: the write creates -wal and -shm
            connection.execute(text("CREATE TABLE t (v TEXT)"))
            connection.execute(text("INSERT INTO t VALUES ('x')"))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT v FROM t")).scalar_one() == "x"
            side_files = [tmp_path / "fresh.db-wal", tmp_path / "fresh.db-shm"]
            assert all(side.exists() for side in side_files)
            assert {p.name: mode(p) for p in [path, *side_files]} == {
                "fresh.db": 0o600,
                "fresh.db-wal": 0o600,
                "fresh.db-shm": 0o600,
            }
    finally:
        engine.dispose()


@pytest.mark.usefixtures("usual_umask")
def test_an_existing_database_file_keeps_its_mode_and_content(tmp_path: Path) -> None:
    path = tmp_path / "kept.db"
    first = create_db_engine(f"sqlite:///{path}")
    with first.begin() as connection:
        connection.execute(text("CREATE TABLE t (v TEXT)"))
        connection.execute(text("INSERT INTO t VALUES ('kept')"))
    first.dispose()
    path.chmod(0o640)  # the operator's choice

    again = create_db_engine(f"sqlite:///{path}")
    with again.connect() as connection:
        assert connection.execute(text("SELECT v FROM t")).scalar_one() == "kept"
    again.dispose()
    assert mode(path) == 0o640


def test_a_database_in_a_missing_directory_fails_at_connect_not_at_engine(
    tmp_path: Path,
) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path}/missing/dir/app.db")
    with pytest.raises(OperationalError, match="unable to open database file"):
        engine.connect()
    engine.dispose()
