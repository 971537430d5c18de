"""What to tell someone whose database cannot be reached: which one and why, in one line,
never the password (the URL's password is not shown, the driver's message is not echoed)."""

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

# What the drivers say (libpq through psycopg, sqlite3), and what it means to the reader.
REASONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("connection refused",), "connection refused: is the server running on that port?"),
    (("timeout expired", "timed out"), "timed out: is the host reachable?"),
    (
        ("could not translate host name", "name or service not known", "nodename nor servname"),
        "host not found",
    ),
    (
        ("password authentication failed", "authentication failed", "no password supplied"),
        "authentication failed: check the user and password",
    ),
    (("does not exist",), "database missing: create it, or fix the name"),
    (("no pg_hba.conf entry",), "the server refuses this host or user (pg_hba.conf)"),
    (("too many clients", "remaining connection slots"), "the server has no free connection"),
    (
        ("unable to open database file",),
        "cannot open the file: does its directory exist, and may this user write there?",
    ),
    (("readonly database", "read-only", "read only"), "the file or its directory is read-only"),
    (("disk i/o error",), "disk I/O error"),
)


def where(url: str) -> str:
    """The database a URL names, without its password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "the database of DATABASE_URL"
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database or ':memory:'}"
    host = parsed.host or "the local socket"
    port = f":{parsed.port}" if parsed.port else ""
    user = f", user {parsed.username}" if parsed.username else ""
    return f"PostgreSQL at {host}{port}, database {parsed.database or '(default)'}{user}"


def why(error: BaseException) -> str:
    message = str(getattr(error, "orig", None) or error).lower()
    for needles, reason in REASONS:
        if any(needle in message for needle in needles):
            return reason
    return type(getattr(error, "orig", None) or error).__name__


def unreachable(error: OperationalError, url: str) -> str:
    """`database unreachable: <which>: <why>`, one line."""
    return f"database unreachable: {where(url)}: {why(error)}"
