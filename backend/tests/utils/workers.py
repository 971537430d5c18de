"""Separate databases for pytest-xdist workers, so that parallel sessions never share rows,
rate-limit counters or a schema reset."""

import os
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


def worker_index() -> int | None:
    """0, 1, ... for the xdist workers `gw0`, `gw1`, ...; None outside xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker.removeprefix("gw")) if worker.startswith("gw") else None


def worker_database_url(url: str | None) -> str | None:
    """The PostgreSQL URL of this worker's own database (`<name>_gw<n>`, created if missing)."""
    index = worker_index()
    if not url or index is None:
        return url
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'postgres'}_gw{index}"
    plain = urlunsplit(parts._replace(scheme="postgresql"))
    with psycopg.connect(plain, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if exists.fetchone() is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(parts._replace(path=f"/{name}"))


def worker_redis_url(url: str) -> str:
    """This worker's own Redis database: the given one's number plus 1 + the worker index."""
    index = worker_index()
    if index is None:
        return url
    parts = urlsplit(url)
    base = int(parts.path.lstrip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + 1 + index}"))
