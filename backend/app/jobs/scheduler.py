"""The one scheduler of a server process's background loops: each job runs every `interval`
seconds in a worker thread (app/steps.run_step); a failure is logged and the job runs again
at its next interval, never ending the server. Started and stopped by the app's lifespan."""

import asyncio
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from app.steps import run_step

logger = logging.getLogger(__name__)

FIRST_RUN_WITHIN_S = 60.0  # a server restarted more often than a job's interval still runs it


@dataclass(frozen=True)
class Job:
    name: str
    interval: float  # seconds
    run: Callable[[threading.Event], object]  # given the stop event: return soon once it is set


@dataclass
class Scheduler:
    jobs: tuple[Job, ...]
    first_run_within: float | None = None  # None: FIRST_RUN_WITHIN_S
    stopping: threading.Event = field(default_factory=threading.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _woken: asyncio.Event | None = None

    def start(self) -> None:
        self.stopping.clear()
        self._woken = asyncio.Event()
        self._tasks = [asyncio.create_task(self._loop(job), name=job.name) for job in self.jobs]

    async def stop(self) -> None:
        """Ask every job to stop, and wait for the runs in hand to end (a batch at most): a
        worker thread cannot be cancelled, so it is told (`stopping`) and awaited."""
        self.stopping.set()
        if self._woken is not None:
            self._woken.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _loop(self, job: Job) -> None:
        # Jittered, so the processes of one host do not all wake at the same moment.
        within = FIRST_RUN_WITHIN_S if self.first_run_within is None else self.first_run_within
        delay = random.uniform(0, min(job.interval, within))  # noqa: S311
        assert self._woken is not None
        while not self.stopping.is_set():
            try:
                await asyncio.wait_for(self._woken.wait(), timeout=delay)
                return  # woken: stopping
            except TimeoutError:
                await self.run_once(job)
            delay = job.interval

    async def run_once(self, job: Job) -> None:
        try:
            await run_step(job.run, self.stopping)
        except Exception:
            logger.exception(
                "background job %s failed; it runs again in %ss", job.name, job.interval
            )
