"""PASSWORD_HASH: bcrypt or argon2id. Both are always verified; a hash of the other scheme or
of other parameters is replaced at the next successful login; a wrong password costs at least
one check at the configured cost whatever the stored hash."""

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest
from argon2 import PasswordHasher
from argon2 import Type as Argon2Type
from fastapi.testclient import TestClient
from passlib.hash import bcrypt
from sqlmodel import Session

from app.core import passwords
from app.core.config import Settings
from app.crud import users
from app.models.user import User
from tests.utils import PASSWORD, api, login, make_user, register

CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 64, "parallelism": 1}


@pytest.fixture
def scheme(settings: Callable[..., Settings]) -> Iterator[Callable[..., None]]:
    """`scheme("argon2id", **settings)`: the service hashes with it from now on."""

    def use(name: str, **values: object) -> None:
        settings(PASSWORD_HASH=name, **values)
        passwords._context.cache_clear()
        passwords._dummy_hash.cache_clear()

    yield use
    passwords._context.cache_clear()
    passwords._dummy_hash.cache_clear()


def stored_hash(db: Session, email: str) -> str:
    user = users.get_user_by_email(db, email)
    assert user is not None
    db.refresh(user)
    db.commit()
    return user.hashed_password


def with_hash(db: Session, email: str, hashed: str) -> User:
    user = make_user(db, email=email)
    user.hashed_password = hashed
    db.add(user)
    db.commit()
    return user


def test_registration_with_argon2id_stores_an_argon2id_hash_of_the_configured_cost(
    client: TestClient, db: Session, scheme: Callable[..., None]
) -> None:
    scheme("argon2id", ARGON2_TIME_COST=2, ARGON2_MEMORY_COST=128, ARGON2_PARALLELISM=2)
    assert register(client, "ada@example.com").status_code == 201
    assert stored_hash(db, "ada@example.com").startswith("$argon2id$v=19$m=128,t=2,p=2$")
    assert login(client, "ada@example.com")["access_token"]


def test_login_with_bcrypt_password_upgrades_to_argon2(
    client: TestClient, db: Session, scheme: Callable[..., None]
) -> None:
    with_hash(db, "old@example.com", bcrypt.using(rounds=4).hash(PASSWORD))
    scheme("argon2id")

    login(client, "old@example.com")

    upgraded = stored_hash(db, "old@example.com")
    assert upgraded.startswith("$argon2id$v=19$m=64,t=1,p=1$")
    assert PasswordHasher(**CHEAP_ARGON2).verify(upgraded, PASSWORD)
    assert login(client, "old@example.com")["access_token"]
    assert stored_hash(db, "old@example.com") == upgraded  # current now: left as it is


def test_login_with_argon2_password_upgrades_to_bcrypt(client: TestClient, db: Session) -> None:
    argon2_hash = PasswordHasher(**CHEAP_ARGON2).hash(PASSWORD)
    with_hash(db, "back@example.com", argon2_hash)

    login(client, "back@example.com")

    upgraded = stored_hash(db, "back@example.com")
    assert upgraded.startswith("$2b$04$") and bcrypt.verify(PASSWORD, upgraded)


@pytest.mark.parametrize(
    "parameters",
    [
        pytest.param({"time_cost": 2, "memory_cost": 64, "parallelism": 1}, id="more-passes"),
        pytest.param({"time_cost": 1, "memory_cost": 32, "parallelism": 1}, id="less-memory"),
        pytest.param({"time_cost": 1, "memory_cost": 64, "parallelism": 2}, id="more-lanes"),
        pytest.param({**CHEAP_ARGON2, "type": Argon2Type.I}, id="argon2i"),
    ],
)
def test_an_argon2_hash_of_other_parameters_is_upgraded_at_login(
    client: TestClient, db: Session, scheme: Callable[..., None], parameters: dict[str, object]
) -> None:
    scheme("argon2id")
    with_hash(db, "tuned@example.com", PasswordHasher(**parameters).hash(PASSWORD))  # type: ignore[arg-type]

    login(client, "tuned@example.com")

    assert stored_hash(db, "tuned@example.com").startswith("$argon2id$v=19$m=64,t=1,p=1$")


def test_a_wrong_password_leaves_the_old_scheme_hash_as_it_is(
    client: TestClient, db: Session, scheme: Callable[..., None]
) -> None:
    old = bcrypt.using(rounds=4).hash(PASSWORD)
    with_hash(db, "old@example.com", old)
    scheme("argon2id")
    response = client.post(
        api("/auth/login"), data={"username": "old@example.com", "password": "not-it-at-all"}
    )
    assert response.status_code == 401
    assert stored_hash(db, "old@example.com") == old


def test_a_long_password_set_under_argon2id_still_logs_in_under_bcrypt(
    client: TestClient, db: Session, scheme: Callable[..., None]
) -> None:
    """bcrypt cannot take more than 72 bytes: such a password keeps its argon2id hash."""
    long_password = "correct horse battery staple " * 4  # 116 bytes
    scheme("argon2id")
    assert register(client, "long@example.com", long_password).status_code == 201
    kept = stored_hash(db, "long@example.com")
    scheme("bcrypt")
    assert login(client, "long@example.com", long_password)["access_token"]
    assert stored_hash(db, "long@example.com") == kept


def test_argon2id_takes_a_password_bcrypt_would_refuse(
    client: TestClient, scheme: Callable[..., None]
) -> None:
    too_long_for_bcrypt = "x" * 73
    assert register(client, "a@example.com", too_long_for_bcrypt).status_code == 422
    scheme("argon2id")
    assert register(client, "b@example.com", too_long_for_bcrypt).status_code == 201
    assert register(client, "c@example.com", "x" * 1025).status_code == 422


def test_a_wrong_password_on_an_old_scheme_hash_costs_one_check_at_the_configured_cost(
    db: Session, scheme: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown email costs one verification of the dummy hash; a wrong password on an
    account whose hash is of another scheme or cost costs that one too, besides its own."""
    scheme("argon2id")
    spent: list[str] = []
    real = passwords._spend_one_check
    monkeypatch.setattr(passwords, "_spend_one_check", lambda: spent.append("x") or real())
    old = bcrypt.using(rounds=4).hash(PASSWORD)
    current = passwords.hash_password_sync(PASSWORD)

    assert asyncio.run(passwords.verify_password("wrong-password", None)) == (False, None)
    assert spent == ["x"]
    assert asyncio.run(passwords.verify_password("wrong-password", old)) == (False, None)
    assert spent == ["x", "x"]
    assert asyncio.run(passwords.verify_password("wrong-password", current)) == (False, None)
    assert spent == ["x", "x"]  # a current hash is itself the configured cost
    matched, new_hash = asyncio.run(passwords.verify_password(PASSWORD, old))
    assert matched and new_hash is not None and new_hash.startswith("$argon2id$")


def test_hashing_runs_in_the_bounded_pool_not_on_the_event_loop(
    scheme: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    scheme("argon2id")
    threads: list[str] = []
    real = passwords.hash_password_sync

    def spy(password: str) -> str:
        threads.append(threading.current_thread().name)
        return real(password)

    monkeypatch.setattr(passwords, "hash_password_sync", spy)

    async def scenario() -> str:
        loop_thread = threading.current_thread().name
        hashed = await passwords.hash_password(PASSWORD)
        assert threads and threads[0] != loop_thread
        return hashed

    assert asyncio.run(scenario()).startswith("$argon2id$")
    assert threads[0].startswith("bcrypt")  # the pool's threads (passwords.HashQueue)


def test_an_upgrade_never_overwrites_a_hash_changed_since_it_was_verified(db: Session) -> None:
    """The login's compare-and-swap: the upgrade lands only over the hash it verified."""
    old = bcrypt.using(rounds=5).hash(PASSWORD)
    user = with_hash(db, "race@example.com", old)
    newer = bcrypt.using(rounds=4).hash("a-newer-password")
    users.replace_password(db, user_id=user.id, new_hash=newer)
    db.commit()
    users.upgrade_hash(db, user_id=user.id, verified=old, new_hash="$2b$04$upgraded")
    db.commit()
    assert stored_hash(db, "race@example.com") == newer
