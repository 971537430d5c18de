"""POST /api/v1/users/import: per-line results, idempotence by email or external_id, --update,
product roles and organizations, TOTP secrets, plain passwords under the password policy, and
bad input as one line's error while the others import."""

import json
import threading
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from passlib.hash import bcrypt
from sqlmodel import Session

from app.core.permissions import Role
from app.crud import authz, organizations
from app.crud.audit import SYSTEM, Actor
from app.db import get_engine, transaction
from app.imports.lines import prepare
from app.imports.users import write
from app.models.authz import RoleCreate
from app.models.organization import OrganizationCreate
from app.models.user import User
from tests.utils import api, login
from tests.utils.account import all_event_text
from tests.utils.imports import imported, jsonl, post_import, stored

SECRET = "violet quartz heron"
HASH = bcrypt.using(rounds=4).hash(SECRET)


def line(email: str, **fields: Any) -> dict[str, Any]:
    return {"email": email, "password_hash": HASH, **fields}


def statuses(results: list[dict[str, Any]]) -> list[str]:
    return [result["status"] for result in results]


@pytest.fixture
def product(db: Session) -> None:
    """Two product roles and an organization, as an admin would have made them."""
    for name in ("editor", "viewer"):
        transaction(authz.create_role, db, body=RoleCreate(name=name), actor=SYSTEM)
    body = OrganizationCreate(name="Acme", slug="acme")
    transaction(organizations.create, db, body=body, actor=SYSTEM)


def test_each_line_is_created_then_a_second_run_changes_nothing(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    lines = [
        line("ada@example.com", full_name="Ada Lovelace", is_verified=True, external_id="1"),
        line("grace@example.com", role="moderator", created_at="2019-03-04T05:06:07"),
        {"email": "linus@example.com"},  # no password: recovery sets one
    ]
    first = imported(client, admin_headers, lines)
    assert first == [
        {"line": n, "email": email, "status": "created"}
        for n, email in enumerate(["ada@example.com", "grace@example.com", "linus@example.com"], 1)
    ]
    ada, grace = stored("ada@example.com"), stored("grace@example.com")
    assert ada is not None and ada.is_verified and ada.full_name == "Ada Lovelace"
    assert ada.external_id == "1" and ada.hashed_password == HASH
    assert grace is not None and grace.role == Role.MODERATOR
    assert grace.created_at.isoformat() == "2019-03-04T05:06:07+00:00"  # no offset: UTC
    nobody = client.post(
        api("/auth/login"), data={"username": "linus@example.com", "password": "!"}
    )
    assert nobody.status_code == 401

    again = imported(client, admin_headers, lines)
    assert statuses(again) == ["skipped"] * 3
    assert {r["reason"] for r in again} == {"already imported: the email or external_id exists"}
    again_updating = imported(client, admin_headers, lines, update="true")
    assert statuses(again_updating) == ["skipped"] * 3
    assert {r["reason"] for r in again_updating} == {"unchanged"}


def test_update_changes_the_profile_but_never_the_credentials(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    old_cost = bcrypt.using(rounds=5).hash(SECRET)
    imported(
        client, admin_headers, [line("ada@example.com", external_id="42", password_hash=old_cost)]
    )
    login(client, "ada@example.com", SECRET)  # the hash is upgraded at this login
    upgraded = stored("ada@example.com")
    assert upgraded is not None and upgraded.hashed_password != old_cost

    changed = line(
        "ada.lovelace@example.com",  # found again by its external_id: the email moves
        external_id="42",
        full_name="Ada King",
        is_active=False,
        password_hash=bcrypt.using(rounds=4).hash("another secret entirely"),
    )
    assert statuses(imported(client, admin_headers, [changed])) == ["skipped"]
    [result] = imported(client, admin_headers, [changed], update="true")
    assert result == {"line": 1, "email": "ada.lovelace@example.com", "status": "updated"}
    user = stored("ada.lovelace@example.com")
    assert user is not None and user.full_name == "Ada King" and not user.is_active
    assert user.hashed_password == upgraded.hashed_password  # credentials are not updated
    assert stored("ada@example.com") is None


def test_an_email_and_an_external_id_of_two_accounts_is_that_lines_error(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    imported(client, admin_headers, [line("a@example.com", external_id="A"), line("b@example.com")])
    results = imported(
        client,
        admin_headers,
        [line("b@example.com", external_id="A"), line("a@example.com", external_id="B")],
        update="true",
    )
    assert [(r["status"], r["reason"]) for r in results] == [
        ("error", "external_id and email belong to two different accounts"),
        ("error", "email belongs to an account with another external_id"),
    ]


@pytest.mark.usefixtures("product")
def test_roles_and_organizations_of_a_line_are_assigned(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    lines = [
        line("ada@example.com", roles=["viewer"], organizations=[
            {"slug": "acme", "roles": ["editor", "viewer"]},
        ]),
        line("bob@example.com", roles=["nope"]),
        line("cat@example.com", organizations=[{"slug": "globex", "roles": []}]),
        line("dan@example.com", organizations=[{"slug": "acme", "roles": ["ghost"]}]),
    ]  # fmt: skip
    results = imported(client, admin_headers, lines)
    assert [(r["status"], r.get("reason")) for r in results] == [
        ("created", None),
        ("error", "unknown role: nope"),
        ("error", "unknown organization: globex"),
        ("error", "unknown role: ghost"),
    ]
    assert all(stored(f"{n}@example.com") is None for n in ("bob", "cat", "dan"))  # nothing half
    ada = stored("ada@example.com")
    assert ada is not None
    assert [r.name for r in transaction(authz.user_roles, db, ada.id)] == ["viewer"]
    acme = transaction(organizations.get, db, "acme")
    members = client.get(api(f"/organizations/{acme.id}/members"), headers=admin_headers).json()
    [member] = members["items"]
    assert member["email"] == "ada@example.com"
    assert sorted(r["name"] for r in member["roles"]) == ["editor", "viewer"]

    moved = line("ada@example.com", organizations=[{"slug": "acme", "roles": ["viewer"]}])
    assert statuses(imported(client, admin_headers, [moved], update="true")) == ["updated"]
    assert statuses(imported(client, admin_headers, [moved], update="true")) == ["skipped"]


def test_a_totp_secret_is_stored_encrypted_and_asked_for_at_login(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    secret = pyotp.random_base32()
    spaced = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)).lower()
    results = imported(
        client,
        admin_headers,
        [
            line("ada@example.com", mfa_totp_secret=spaced),
            line("bob@example.com", mfa_totp_secret="not base32!"),
        ],
    )
    assert [(r["status"], r.get("reason")) for r in results] == [
        ("created", None),
        ("error", "mfa_totp_secret: not a base32 secret"),
    ]
    user = stored("ada@example.com")
    assert user is not None and user.mfa_enabled and user.mfa_secret
    assert secret not in user.mfa_secret  # encrypted at rest, as the service stores its own
    step = client.post(api("/auth/login"), data={"username": user.email, "password": SECRET})
    assert step.json()["mfa_required"] is True
    second = client.post(
        api("/auth/login/mfa"),
        json={"mfa_token": step.json()["mfa_token"], "code": pyotp.TOTP(secret).now()},
    )
    assert second.status_code == 200, second.text


def test_plain_passwords_are_held_to_the_password_policy(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    lines = [
        {"email": "ada@example.com", "password": "tangerine kettle marmalade"},
        {"email": "bob@example.com", "password": "iloveyou1"},
        {"email": "carl.sagan@example.com", "password": "pale-blue-sagan-dot"},
        {"email": "dan@example.com", "full_name": "Dan Brown", "password": "da-vinci-brown-code"},
        {"email": "eve@example.com", "password": "short"},
        {"email": "fay@example.com", "password": "x", "password_hash": HASH},
    ]
    results = imported(client, admin_headers, lines)
    assert statuses(results) == ["created", "error", "error", "error", "error", "error"]
    assert "most common passwords" in results[1]["reason"]
    assert "your email address or your name" in results[2]["reason"]
    assert "your email address or your name" in results[3]["reason"]
    assert "at least 8 characters" in results[4]["reason"]
    assert results[5]["reason"] == "give password or password_hash, not both"
    assert "iloveyou1" not in json.dumps(results)
    assert login(client, "ada@example.com", "tangerine kettle marmalade")["access_token"]


def test_bad_lines_are_errors_with_reasons_and_the_others_import(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = b"\n".join(
        [
            json.dumps(line("ok1@example.com")).encode(),
            b"{not json",
            b"[1, 2]",
            json.dumps(line("not-an-email")).encode(),
            json.dumps({**line("x@example.com"), "passwordHash": "typo"}).encode(),
            json.dumps(line("y@example.com", role="owner")).encode(),
            b"",
            json.dumps(line("ok2@example.com")).encode(),
        ]
    )
    response = client.post(
        api("/users/import"),
        content=body,
        headers={**admin_headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["line"], r["status"], r.get("reason", "")[:28]) for r in results] == [
        (1, "created", ""),
        (2, "error", "not valid JSON"),
        (3, "error", "not a JSON object"),
        (4, "error", "email: not a valid email add"),
        (5, "error", "passwordHash: unknown field"),
        (6, "error", "role: Input should be 'user'"),
        (8, "created", ""),
    ]


def test_a_json_array_body_imports_too(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.post(
        api("/users/import"),
        json=[line("a@example.com"), line("b@example.com")],
        headers=admin_headers,
    )
    assert response.status_code == 200
    assert statuses(response.json()["results"]) == ["created", "created"]


@pytest.mark.parametrize(
    ("content_type", "body", "status", "detail"),
    [
        ("application/x-ndjson", b"email,password\nada@example.com,x\n", 422, "Not JSON Lines"),
        ("application/x-ndjson", b'[{"email": "a@example.com"}]', 422, "JSON array"),
        ("application/json", b'{"email": "a@example.com"}', 422, "JSON array of users"),
        ("text/csv", b"email\nada@example.com\n", 415, "application/x-ndjson"),
    ],
)
def test_a_body_that_is_no_import_is_refused_whole(
    client: TestClient,
    admin_headers: dict[str, str],
    content_type: str,
    body: bytes,
    status: int,
    detail: str,
) -> None:
    response = client.post(
        api("/users/import"), content=body, headers={**admin_headers, "Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    assert detail in response.text
    assert stored("ada@example.com") is None and stored("a@example.com") is None


def test_more_than_10000_lines_is_413_and_imports_nothing(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    lines = [{"email": f"u{n}@example.com"} for n in range(10_001)]
    response = post_import(client, admin_headers, lines)
    assert response.status_code == 413
    assert "At most 10,000 users a request" in response.text
    assert stored("u0@example.com") is None
    array = client.post(api("/users/import"), json=lines, headers=admin_headers)
    assert array.status_code == 413


@pytest.mark.parametrize("role", ["user", "moderator"])
def test_only_an_admin_may_import(
    client: TestClient, request: pytest.FixtureRequest, role: str
) -> None:
    headers = request.getfixturevalue(f"{role}_headers")
    response = post_import(client, headers, [line("ada@example.com")])
    assert response.status_code == 403
    assert response.json() == {"detail": "Not enough permissions"}
    assert stored("ada@example.com") is None
    assert post_import(client, {}, [line("ada@example.com")]).status_code == 401


def test_a_dry_run_answers_as_a_run_would_and_writes_nothing(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    lines = [line("ada@example.com"), line("ada@example.com"), {"email": "bad"}]
    dry = imported(client, admin_headers, lines, dry_run="true")
    assert statuses(dry) == ["created", "skipped", "error"]
    assert stored("ada@example.com") is None
    assert statuses(imported(client, admin_headers, lines)) == ["created", "skipped", "error"]


def test_demoting_the_last_admin_is_that_lines_error_and_the_batch_still_imports(
    client: TestClient, admin: User, admin_headers: dict[str, str]
) -> None:
    lines = [line("new@example.com"), line(admin.email, role="user"), line("next@example.com")]
    results = imported(client, admin_headers, lines, update="true")
    assert [(r["status"], r.get("reason")) for r in results] == [
        ("created", None),
        ("error", "The last active admin cannot be demoted, deactivated or deleted"),
        ("created", None),
    ]
    assert (user := stored(admin.email)) is not None and user.role == Role.ADMIN


def test_no_hash_or_password_reaches_an_answer_or_an_audit_event(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    plain = "tangerine kettle marmalade"
    lines = [line("ada@example.com"), {"email": "bob@example.com", "password": plain}]
    results = imported(client, admin_headers, lines)
    text = json.dumps(results) + all_event_text()
    assert "user.imported" in text
    assert HASH not in text and HASH[7:29] not in text and plain not in text
    bob = stored("bob@example.com")
    assert bob is not None and bob.hashed_password not in text


def test_two_imports_of_one_file_at_once_create_each_user_once(db: Session) -> None:
    """A batch broken by a concurrent import (the same email created meanwhile) is run again
    line by line: each user is created exactly once, the rest skipped, no error."""
    emails = [f"race{n}@example.com" for n in range(40)]
    prepared = [prepare(n, line(email)) for n, email in enumerate(emails, 1)]
    results: list[list[str]] = []
    gate = threading.Barrier(2)

    def run() -> None:
        with Session(get_engine(), expire_on_commit=False) as session:
            gate.wait()
            done = write(session, prepared, update=False, actor=Actor())  # type: ignore[arg-type]
            results.append([r.status for r in done])

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 2
    per_line = list(zip(*results, strict=True))
    assert all(sorted(pair) == ["created", "skipped"] for pair in per_line), per_line
    assert all(stored(email) is not None for email in emails)


def test_the_import_route_takes_a_body_larger_than_max_body_bytes(
    client: TestClient, admin_headers: dict[str, str], settings: Callable[..., Any]
) -> None:
    lines = [line(f"big{n}@example.com", full_name="x" * 250) for n in range(3500)]
    assert len(jsonl(lines)) > 1_048_576  # MAX_BODY_BYTES' default
    response = post_import(client, admin_headers, lines)
    assert response.status_code == 200
    assert statuses(response.json()["results"]) == ["created"] * 3500
    assert login(client, "big3499@example.com", SECRET)["access_token"]
