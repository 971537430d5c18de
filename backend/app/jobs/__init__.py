"""Background loops of a server process (DESIGN.md): one scheduler, and its jobs."""

import threading

from app.core.config import Settings
from app.jobs import janitor
from app.jobs.scheduler import Job, Scheduler


def _retention(stop: threading.Event) -> None:
    janitor.purge(stop=stop)


def server_jobs(settings: Settings) -> tuple[Job, ...]:
    """The jobs every server process runs (each takes its own lock where one must run alone)."""
    return (Job("retention-janitor", settings.RETENTION_INTERVAL_SECONDS, _retention),)


def server_scheduler(settings: Settings) -> Scheduler | None:
    """The server's scheduler, or None when BACKGROUND_JOBS is off."""
    return Scheduler(server_jobs(settings)) if settings.BACKGROUND_JOBS else None
