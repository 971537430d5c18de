"""The version of the OAuth client rows: renewed in the transaction of every client change, so
that a process caching something derived from the clients (the CORS origins of
api/oauth_cors.py) sees with one small read whether any process, on any host, changed them."""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

from app.models.client import OAuthClient

CLIENTS_VERSION_ID = 1


class ClientsVersion(SQLModel, table=True):
    """One row (id CLIENTS_VERSION_ID), holding a random `version` (not a counter: a database
    emptied or restored never brings back a version a process has seen). Missing, before the
    first client change, it reads as None: a version like any other."""

    __tablename__ = "oauth_client_version"

    id: int = Field(default=CLIENTS_VERSION_ID, primary_key=True)
    version: str = Field(max_length=32)


def _renew(_mapper: Any, connection: sa.Connection, _client: Any) -> None:
    """A new version, written on the flush's own connection: in the change's transaction."""
    renew(connection)


def renew(connection: sa.Connection) -> None:
    """Write a new version in `connection`'s transaction. Its row stays locked until that
    transaction ends: every change of a client row takes this lock, so a step that takes it
    first makes concurrent client changes wait for it (crud/console.py)."""
    table = ClientsVersion.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    version = uuid.uuid4().hex
    connection.execute(
        insert(table)
        .values(id=CLIENTS_VERSION_ID, version=version)
        .on_conflict_do_update(index_elements=[table.c.id], set_={"version": version})
    )


# Every ORM insert, update or delete of a client row, through any helper, session or engine,
# renews the version. (A bulk UPDATE or DELETE statement on oauth_client would not: there is
# none that changes a client, and one must renew it itself.)
for _event in ("after_insert", "after_update", "after_delete"):
    sa.event.listen(OAuthClient, _event, _renew)
