"""`manage purge [--dry-run]`: counts per table; a dry run deletes nothing."""

from datetime import timedelta
from pathlib import Path

from sqlmodel import Session

from app.models.client import ClientToken
from app.models.common import utcnow
from app.models.user import User
from tests.test_cli import manage
from tests.utils.retention import DAY, client_token, count, ensure_client, session_row


def _row_of(output: str, table: str) -> str:
    return next(line for line in output.splitlines() if f" {table} " in line)


def test_purge_dry_run_counts_then_purge_deletes(db: Session, user: User, tmp_path: Path) -> None:
    ensure_client(db)
    now = utcnow()
    db.add_all([client_token(now - timedelta(minutes=1)) for _ in range(3)])
    db.add(client_token(now + timedelta(minutes=10)))
    db.add(session_row(user, expires=now - 40 * DAY))
    db.commit()

    dry = manage("purge", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "PURGEABLE" in dry.stdout
    assert " 3 " in _row_of(dry.stdout, "oauth_client_token")
    assert " 1 " in _row_of(dry.stdout, "auth_session")
    assert "4 rows purgeable (dry run: nothing deleted)." in dry.stdout
    assert count(db, ClientToken) == 4

    done = manage("purge", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "DELETED" in done.stdout
    assert " 3 " in _row_of(done.stdout, "oauth_client_token")
    assert "4 rows deleted." in done.stdout
    assert count(db, ClientToken) == 1

    again = manage("purge", cwd=tmp_path)
    assert "0 rows deleted." in again.stdout
