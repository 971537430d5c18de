"""NIST SP 800-63B's password rules, at every way a password is set: no composition rules, the
100,000 most common breached passwords refused, and nothing built on the user's email local
part or name; each refusal a 422 naming its rule, never echoing the password."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.bootstrap import BootstrapRefused, ensure_first_superuser
from app.core import password_policy
from app.core.config import Settings
from app.core.password_policy import PasswordRule, personal_words
from app.core.permissions import Role
from app.crud import action_tokens
from app.db import transaction
from app.models.action_token import TokenPurpose
from app.models.common import utcnow
from app.models.user import User
from tests.test_cli import manage, refused
from tests.utils import PASSWORD, api, auth_header, login, make_user

COMMON = ["password1", "Password1", "qwerty123", "1q2w3e4r5t", "iloveyou12", "PASSWORD123"]
OWNER = {"email": "grace.hopper@example.com", "full_name": "Grace Brewster Hopper"}
PERSONAL = ["grace.hopper-1906", "GRACEHOPPER!", "my-name-is-hopper", "brewster-navy-42"]


def reset_token(db: Session, user: User) -> str:
    return transaction(
        action_tokens.issue,
        db,
        user_id=user.id,
        email=user.email,
        purpose=TokenPurpose.RESET_PASSWORD,
        expires_at=utcnow() + timedelta(hours=1),
    )


# Each way to set a password over HTTP, for the account OWNER: (status, body) of the answer.
Setter = Callable[[TestClient, Session, str], tuple[int, Any]]


def by_registration(client: TestClient, _db: Session, password: str) -> tuple[int, Any]:
    response = client.post(api("/auth/register"), json={**OWNER, "password": password})
    return response.status_code, response.json()


def by_reset(client: TestClient, db: Session, password: str) -> tuple[int, Any]:
    owner = make_user(db, **OWNER)
    body = {"token": reset_token(db, owner), "new_password": password}
    response = client.post(api("/auth/reset-password"), json=body)
    return response.status_code, response.json() if response.content else None


def by_change(client: TestClient, db: Session, password: str) -> tuple[int, Any]:
    owner = make_user(db, **OWNER)
    headers = auth_header(login(client, owner.email))
    body = {"current_password": PASSWORD, "new_password": password}
    response = client.post(api("/users/me/password"), json=body, headers=headers)
    return response.status_code, response.json() if response.content else None


def by_admin(client: TestClient, db: Session, password: str) -> tuple[int, Any]:
    owner = make_user(db, **OWNER)
    admin = make_user(db, email="boss@example.com", role=Role.ADMIN)
    headers = auth_header(login(client, admin.email))
    response = client.patch(api(f"/users/{owner.id}"), json={"password": password}, headers=headers)
    return response.status_code, response.json()


SETTERS = [
    pytest.param(by_registration, "password", id="registration"),
    pytest.param(by_reset, "new_password", id="reset"),
    pytest.param(by_change, "new_password", id="change"),
    pytest.param(by_admin, "password", id="admin-update"),
]


def assert_refused(status: int, body: Any, password: str, field: str, rule: PasswordRule) -> None:
    assert status == 422, body
    [error] = body["detail"]
    assert error["loc"] == ["body", field]
    assert password not in str(body) and password.casefold() not in str(body).casefold()
    expected = {
        PasswordRule.COMMON: "most common passwords",
        PasswordRule.PERSONAL: "your email address or your name",
        PasswordRule.BREACHED: "known data breach",
    }[rule]
    assert expected in error["msg"]
    if "ctx" in error and "rule" in error["ctx"]:
        assert error["ctx"]["rule"] == rule


@pytest.mark.parametrize(("setter", "field"), SETTERS)
@pytest.mark.parametrize("password", COMMON[:2])
def test_a_common_breached_password_is_refused_wherever_it_is_set(
    client: TestClient, db: Session, setter: Setter, field: str, password: str
) -> None:
    status, body = setter(client, db, password)
    assert_refused(status, body, password, field, PasswordRule.COMMON)


@pytest.mark.parametrize(("setter", "field"), SETTERS)
@pytest.mark.parametrize("password", PERSONAL[:2])
def test_a_password_holding_the_email_or_the_name_is_refused_wherever_it_is_set(
    client: TestClient, db: Session, setter: Setter, field: str, password: str
) -> None:
    status, body = setter(client, db, password)
    assert_refused(status, body, password, field, PasswordRule.PERSONAL)


@pytest.mark.parametrize(("setter", "field"), SETTERS)
def test_a_long_uncommon_password_is_taken_with_no_composition_rule(
    client: TestClient, db: Session, setter: Setter, field: str
) -> None:
    """All lower case, no digit, no symbol: NIST asks for none of them."""
    status, body = setter(client, db, "tangerine kettle marmalade")
    assert status in {201, 200, 204}, body


def test_the_admin_rule_judges_against_the_name_the_update_sets(
    client: TestClient, db: Session, admin_headers: dict[str, str], user: User
) -> None:
    body = {"full_name": "Ada Lovelace", "password": "lovelace-engine-1843"}
    response = client.patch(api(f"/users/{user.id}"), json=body, headers=admin_headers)
    assert_refused(
        response.status_code, response.json(), body["password"], "password", PasswordRule.PERSONAL
    )


@pytest.mark.parametrize("password", COMMON)
def test_the_blocklist_is_case_insensitive(password: str) -> None:
    found = password_policy.problem(password)
    assert found is not None and found.rule is PasswordRule.COMMON


def test_the_blocklist_holds_the_100000_most_common_passwords() -> None:
    listed = password_policy.blocklist()
    assert 95_000 < len(listed) <= 100_000  # case-folded: "Password" and "password" are one
    assert {"123456", "password", "qwerty", "iloveyou", "1q2w3e4r5t"} <= listed
    assert password_policy.problem("tangerine kettle marmalade") is None


@pytest.mark.parametrize(
    ("email", "full_name", "expected"),
    [
        ("grace.hopper@example.com", "Grace Brewster Hopper", {
            "grace.hopper", "grace", "hopper", "grace brewster hopper", "brewster",
        }),
        ("al@example.com", "Al Li", {"al li"}),  # "al" and "li" are under 4 characters
        ("jo_ann+work@example.com", None, {"jo_ann+work", "work"}),
        (None, "  Bo   Ng  ", {"bo ng"}),
        ("ÉLODIE@example.com", "Élodie", {"élodie"}),
    ],
)  # fmt: skip
def test_the_personal_words_are_the_local_part_and_the_name_of_4_characters_or_more(
    email: str | None, full_name: str | None, expected: set[str]
) -> None:
    assert personal_words(email, full_name) == expected


@pytest.mark.parametrize(
    "password",
    ["alligator-lizard", "lime-alibi-alley"],  # hold "al" and "li", which are no identity
)
def test_short_names_refuse_nothing(password: str) -> None:
    assert password_policy.problem(password, email="al@example.com", full_name="Al Li") is None


def test_the_first_superuser_password_is_held_to_the_policy(
    db: Session, settings: Callable[..., Settings]
) -> None:
    settings(FIRST_SUPERUSER_EMAIL="first@example.com", FIRST_SUPERUSER_PASSWORD="qwerty123")
    with pytest.raises(BootstrapRefused, match=r"FIRST_SUPERUSER_PASSWORD: .*most common"):
        transaction(ensure_first_superuser, db)
    settings(FIRST_SUPERUSER_FULL_NAME="Ada Lovelace", FIRST_SUPERUSER_PASSWORD="lovelace-1843!")
    with pytest.raises(BootstrapRefused, match="your email address or your name"):
        transaction(ensure_first_superuser, db)


def test_manage_create_superuser_refuses_a_common_or_personal_password(tmp_path: Any) -> None:
    common = manage(
        "create-superuser", "--email", "chief@example.com", "--password", "1q2w3e4r5t",
        cwd=tmp_path,
    )  # fmt: skip
    assert "most common passwords" in refused(common)
    assert "1q2w3e4r5t" not in common.stderr
    personal = manage(
        "create-superuser", "--email", "chief@example.com", "--full-name", "Ada Lovelace",
        "--password", "adalovelace-rules", cwd=tmp_path,
    )  # fmt: skip
    assert "your email address or your name" in refused(personal)
