"""The retention janitor: deletes what retention_rules.RULES calls purgeable, a small batch
per transaction so that no lock is held long enough to stall a login, one instance at a time
(single_instance). Run by the scheduler of each server process and by `manage purge`."""

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, delete, func, select, tuple_
from sqlmodel import Session

from app.core.config import Settings, get_settings
from app.db import get_engine, transaction
from app.jobs.retention_rules import RULES, Rule
from app.jobs.single_instance import only_one
from app.models.common import utcnow

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
JOB_NAME = "retention-janitor"


@dataclass
class Pass:
    """What one pass did: rows per table (counted, not deleted, on a dry run); `ran` is False
    when another instance held the janitor's lock."""

    ran: bool = True
    counts: dict[str, int] = field(default_factory=dict)


def _delete_batch(
    session: Session, *, rule: Rule, condition: ColumnElement[bool], size: int
) -> int:
    """Delete at most `size` purgeable rows of one table, by primary key."""
    keys = rule.model.__table__.primary_key.columns  # type: ignore[attr-defined]
    key = tuple_(*keys) if len(keys) > 1 else next(iter(keys))
    batch = select(*keys).where(condition).limit(size)
    result = session.execute(delete(rule.model).where(key.in_(batch)))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _count(session: Session, condition: ColumnElement[bool], rule: Rule) -> int:
    statement = select(func.count()).select_from(rule.model).where(condition)
    return int(session.execute(statement).scalar_one())


def _purge_table(
    rule: Rule,
    condition: ColumnElement[bool],
    *,
    engine: Engine,
    dry_run: bool,
    batch_size: int,
    stop: threading.Event | None,
) -> int:
    with Session(engine, expire_on_commit=False) as session:
        if dry_run:
            return _count(session, condition, rule)
        total = 0
        while stop is None or not stop.is_set():
            deleted = transaction(
                _delete_batch, session, rule=rule, condition=condition, size=batch_size
            )
            total += deleted
            if deleted < batch_size:
                break
        return total


def purge(
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    settings: Settings | None = None,
    engine: Engine | None = None,
    batch_size: int = BATCH_SIZE,
    stop: threading.Event | None = None,
) -> Pass:
    """One pass over every rule, unless another instance is running one (`ran` False).
    `stop` set ends the pass after the batch in hand (a server shutting down)."""
    engine = engine or get_engine()
    settings = settings or get_settings()
    now = now or utcnow()
    with only_one(engine, JOB_NAME) as mine:
        if not mine:
            logger.info("retention janitor: another instance is running, skipped")
            return Pass(ran=False)
        done = Pass()
        for rule in RULES:
            condition = rule.purgeable(now, settings)
            if condition is None:
                done.counts[rule.table] = 0
                continue
            done.counts[rule.table] = _purge_table(
                rule, condition, engine=engine, dry_run=dry_run, batch_size=batch_size, stop=stop
            )
        if not dry_run and any(done.counts.values()):
            logger.info("retention janitor purged %s", done.counts)
        return done
