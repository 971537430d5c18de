"""A token's permissions are one indexed read (AUTHZ.md, "Limits and speed"): a refresh with
`resource` and `organization` runs the same statements for a user in one organization as for
a user in many, and reads the roles, the membership and the permissions in one of them."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlmodel import Session

from app.core.config import Settings
from app.db import get_engine
from app.models.user import User
from tests.test_authz import ORDERS, add_member, create_resource, create_role
from tests.test_oauth_resources import authorized
from tests.utils import api
from tests.utils.oidc import ISSUER, exchange, make_client, refresh_grant


@pytest.fixture(autouse=True)
def issuer(settings: Callable[..., Settings]) -> None:
    settings(PUBLIC_URL=ISSUER, RATE_LIMIT_ENABLED=False)


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements the service's engine runs meanwhile."""
    seen: list[str] = []

    def note(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_a_refresh_reads_the_permissions_in_one_statement_whatever_the_organizations(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session
) -> None:
    create_resource(client, admin_headers, ORDERS, "read", "write", "delete")
    reader = create_role(client, admin_headers, "reader", (ORDERS, "read"))
    writer = create_role(client, admin_headers, "writer", (ORDERS, "write"))
    client.put(api(f"/users/{user.id}/roles"), json={"roles": [reader["id"]]},
               headers=admin_headers)  # fmt: skip
    add_member(db, user, [writer["id"]], slug="acme")
    registered = make_client(db, first_party=True, resources=[ORDERS], organization_usage="allow")
    scope = "openid offline_access read write delete"
    answer = authorized(client, registered, user, scope, resource=ORDERS, organization="acme")
    tokens = exchange(client, registered, answer["code"], answer["verifier"]).json()
    held = "openid offline_access read write"

    def refreshed() -> list[str]:
        with statements() as seen:
            response: httpx.Response = refresh_grant(
                client, registered, tokens["refresh_token"], resource=ORDERS
            )
        assert response.status_code == 200, response.text
        assert response.json()["scope"] == held
        tokens["refresh_token"] = response.json()["refresh_token"]
        return seen

    refreshed()  # the first of a kind may read what later ones find cached (signing keys)
    one = refreshed()
    for i in range(30):  # roles in many other organizations, none of which may count here
        add_member(db, user, [reader["id"], writer["id"]], slug=f"org-{i}")
    many = refreshed()

    assert len(many) == len(one)
    reads = [s for s in many if "role_permission" in s or "membership" in s]
    assert len(reads) == 1
    assert all(table in reads[0] for table in ("user_role", "membership_role", "membership"))
