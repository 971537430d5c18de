"""The one way from async code to a synchronous step (database work in an ORM session, a
hash): a worker thread of anyio's default limiter, the pool FastAPI and Starlette run sync
routes and dependencies in. Domain modules import this, never a web framework."""

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

import anyio.to_thread
from sqlmodel import Session

from app.db import transaction

P = ParamSpec("P")
R = TypeVar("R")


async def run_step(step: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`step(*args, **kwargs)` in a worker thread, awaited (the context variables go along)."""
    return await anyio.to_thread.run_sync(functools.partial(step, *args, **kwargs))


async def run_transaction(
    step: Callable[Concatenate[Session, P], R],
    session: Session,
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    """`step(session, ...)` as one transaction (db.transaction: one commit, re-run on a
    conflict) in a worker thread, awaited."""
    return await run_step(transaction, step, session, *args, **kwargs)
