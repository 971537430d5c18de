"""The scheduler of background loops (a failing job is logged and runs again; stop ends it),
the lifespan that starts it, and the janitor's one-instance-at-a-time lock."""

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app import jobs
from app.core.config import Settings
from app.db import get_engine
from app.jobs import janitor, scheduler
from app.jobs.scheduler import Job, Scheduler
from app.jobs.single_instance import advisory_key, only_one
from app.main import create_app


def test_a_failing_job_is_logged_and_runs_again_at_its_next_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []
    third = threading.Event()

    def flaky(_stop: threading.Event) -> None:
        runs.append(1)
        if len(runs) == 3:
            third.set()
        if len(runs) == 1:
            raise RuntimeError("database away")

    async def scenario() -> None:
        loops = Scheduler((Job("flaky", 0.05, flaky),), first_run_within=0.0)
        loops.start()
        await asyncio.to_thread(third.wait, 10)
        await loops.stop()

    with caplog.at_level(logging.ERROR, logger="app.jobs.scheduler"):
        asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    assert len(runs) >= 3
    assert any("job flaky failed" in record.getMessage() for record in caplog.records)


def test_stop_tells_a_running_job_to_end_and_waits_for_it() -> None:
    ended = threading.Event()

    def long_job(stop: threading.Event) -> None:
        stop.wait(10)
        ended.set()

    async def scenario() -> float:
        loops = Scheduler((Job("long", 3600, long_job),), first_run_within=0.0)
        loops.start()
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await loops.stop()
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 5
    assert ended.is_set()


def test_the_lifespan_runs_the_janitor_when_background_jobs_are_on(
    settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    passes = threading.Event()
    monkeypatch.setattr(scheduler, "FIRST_RUN_WITHIN_S", 0.0)
    monkeypatch.setattr(janitor, "purge", lambda **_: passes.set())
    settings(BACKGROUND_JOBS=True, RETENTION_INTERVAL_SECONDS=3600)
    with TestClient(create_app()):
        assert passes.wait(10)


def test_no_scheduler_when_background_jobs_are_off(settings: Callable[..., Settings]) -> None:
    assert jobs.server_scheduler(settings(BACKGROUND_JOBS=False)) is None


def test_a_second_janitor_in_this_process_skips_while_one_runs() -> None:
    with only_one(get_engine(), janitor.JOB_NAME) as first:
        assert first
        assert janitor.purge().ran is False
    assert janitor.purge().ran is True


@pytest.mark.skipif(
    get_engine().dialect.name != "postgresql", reason="the advisory lock is PostgreSQL's"
)
def test_two_janitors_on_postgresql_one_runs_the_other_skips() -> None:
    """Another process or host is another database session holding the advisory lock: a
    connection of a second engine stands for it (this process's own lock is not involved)."""
    other_host = create_engine(get_engine().url)
    try:
        with other_host.connect() as other:
            key = {"k": advisory_key(janitor.JOB_NAME)}
            assert other.scalar(text("SELECT pg_try_advisory_lock(:k)"), key)
            assert janitor.purge().ran is False  # the other one runs: this one skips
            other.scalar(text("SELECT pg_advisory_unlock(:k)"), key)
        assert janitor.purge().ran is True
        # And while this one runs, the other cannot take it.
        with only_one(get_engine(), janitor.JOB_NAME) as mine, other_host.connect() as other:
            assert mine
            assert not other.scalar(text("SELECT pg_try_advisory_lock(:k)"), key)
    finally:
        other_host.dispose()
