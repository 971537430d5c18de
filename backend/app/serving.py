"""The app as `manage serve` runs it: app.main's app, whose start-up ends by tuning the
process for serving (tune_process). uvicorn calls served_app() in every worker process
(with --workers N each one imports the app anew), so each is tuned; tests and anything
else that imports app.main get the app alone, and their process as it was."""

import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

GIL_SWITCH_INTERVAL_S = 0.001


def tune_process() -> None:
    """For a process that serves requests, once its start-up heap is built.

    The start-up heap (modules, the app, its compiled statements, the keys) never becomes
    garbage: frozen, the collector's full passes scan only what requests made. Unfrozen,
    each pass scanned it all, often enough under load to set the p99 of every request.

    A worker thread running Python (an ORM write of a login, a bcrypt call's wrapper) keeps
    the GIL until the interpreter's switch interval runs out, and every request waiting on
    the event loop waits that long too; a short interval bounds that wait. Figures and how
    they were found: bench/README.md ("What changed, and the profiles before and after",
    items 2 and 6)."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def tuned(app: FastAPI) -> FastAPI:
    """`app`, its lifespan followed by tune_process() once the app's own start-up is done."""
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with started(app):  # app.main's lifespan, which has no state to pass on
            tune_process()
            yield

    app.router.lifespan_context = lifespan
    return app


def served_app() -> FastAPI:
    """uvicorn's app factory for `manage serve` (its import string: SERVED_APP)."""
    from app.main import app

    return tuned(app)


SERVED_APP = "app.serving:served_app"
