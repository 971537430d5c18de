"""Imported password hashes, made here by each format's own library (or its algorithm
reproduced with hashlib, as Django's), each logs in with its password, is replaced by the
service's own hash at that first login, and refuses a wrong password at the cost an unknown
email costs."""

import asyncio
import base64
import hashlib
import os
import statistics
import time
from collections.abc import Callable

import bcrypt as pybcrypt
import pytest
from argon2 import PasswordHasher
from argon2 import Type as Argon2Type
from fastapi.testclient import TestClient
from passlib.hash import bcrypt as passlib_bcrypt
from passlib.hash import pbkdf2_sha256
from werkzeug.security import generate_password_hash

from app.core import passwords
from app.core.config import Settings
from app.imports import hash_formats
from tests.utils import api, login
from tests.utils.imports import imported, stored

SECRET = "violet quartz heron"  # the imported accounts' password
# Firebase's documented example (github.com/firebase/scrypt, README): a project's parameters,
# a user's salt and the passwordHash of "user1password".
FIREBASE = {
    "signer_key": (
        "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
    ),
    "salt_separator": "Bw==",
    "rounds": 8,
    "mem_cost": 14,
}
FIREBASE_SALT = "42xEC+ixf3L2lw=="
FIREBASE_HASH = (
    "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ=="
)


def django_pbkdf2_sha256(password: str, iterations: int = 1000) -> str:
    """django.contrib.auth.hashers.PBKDF2PasswordHasher, reproduced with hashlib."""
    salt = base64.b32encode(os.urandom(10)).decode().lower()
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


def django_bcrypt_sha256(password: str) -> str:
    """django.contrib.auth.hashers.BCryptSHA256PasswordHasher: bcrypt of the SHA-256 hex."""
    prehashed = hashlib.sha256(password.encode()).hexdigest().encode()
    return "bcrypt_sha256$" + pybcrypt.hashpw(prehashed, pybcrypt.gensalt(4)).decode()


CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 64, "parallelism": 1}
MAKERS: dict[str, Callable[[str], str]] = {
    "bcrypt-2a": lambda p: pybcrypt.hashpw(p.encode(), pybcrypt.gensalt(5, prefix=b"2a")).decode(),
    "bcrypt-2b": lambda p: pybcrypt.hashpw(p.encode(), pybcrypt.gensalt(5)).decode(),
    "bcrypt-2y": lambda p: passlib_bcrypt.using(rounds=5, ident="2y").hash(p),
    "argon2id": lambda p: PasswordHasher(**CHEAP_ARGON2).hash(p),
    "argon2i": lambda p: PasswordHasher(**CHEAP_ARGON2, type=Argon2Type.I).hash(p),
    "django-pbkdf2_sha256": django_pbkdf2_sha256,
    "django-bcrypt_sha256": django_bcrypt_sha256,
    "werkzeug-pbkdf2": lambda p: generate_password_hash(p, method="pbkdf2:sha256:2000"),
    "werkzeug-scrypt": lambda p: generate_password_hash(p, method="scrypt:1024:8:1"),
    "passlib-pbkdf2_sha256": lambda p: pbkdf2_sha256.using(rounds=1000).hash(p),
}


@pytest.mark.parametrize("kind", list(MAKERS))
def test_an_imported_hash_logs_in_and_is_replaced_by_the_service_hash(
    client: TestClient, admin_headers: dict[str, str], kind: str
) -> None:
    made = MAKERS[kind](SECRET)
    email = f"{kind}@example.com"
    [result] = imported(client, admin_headers, [{"email": email, "password_hash": made}])
    assert result == {"line": 1, "email": email, "status": "created"}
    assert made not in str(result)
    assert (user := stored(email)) is not None and user.hashed_password == made  # as given

    wrong = client.post(api("/auth/login"), data={"username": email, "password": "not " + SECRET})
    assert wrong.status_code == 401
    assert (user := stored(email)) is not None and user.hashed_password == made

    assert login(client, email, SECRET)["access_token"]
    assert (user := stored(email)) is not None
    assert user.hashed_password.startswith("$2b$04$")  # BCRYPT_ROUNDS=4 in the tests
    assert passlib_bcrypt.verify(SECRET, user.hashed_password)
    assert login(client, email, SECRET)["access_token"]


def test_firebase_scrypt_with_its_documented_test_vector(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    line = {
        "email": "firebase@example.com",
        "external_id": "firebase-uid-1",
        "password_hash": f"firebase-scrypt${FIREBASE_SALT}${FIREBASE_HASH}",
    }
    [result] = imported(client, admin_headers, [{"firebase_scrypt": FIREBASE}, line])
    assert result == {"line": 2, "email": "firebase@example.com", "status": "created"}
    user = stored("firebase@example.com")
    assert user is not None and user.hashed_password.startswith("$firebase-scrypt$m=14,r=8$")
    assert hash_formats.verify_foreign("user1password", user.hashed_password)
    assert not hash_formats.verify_foreign("user2password", user.hashed_password)

    assert login(client, "firebase@example.com", "user1password")["access_token"]
    upgraded = stored("firebase@example.com")
    assert upgraded is not None and upgraded.hashed_password.startswith("$2b$04$")


def test_a_firebase_hash_without_the_project_parameters_is_that_lines_error(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    line = {"email": "f@example.com", "password_hash": f"firebase-scrypt${FIREBASE_SALT}$AAAA"}
    [result] = imported(client, admin_headers, [line])
    assert result["status"] == "error" and "project's parameters" in result["reason"]


@pytest.mark.parametrize(
    ("password_hash", "reason"),
    [
        ("5f4dcc3b5aa765d61d8327deb882cf99", "unknown password hash format"),
        ("md5$salt$5f4dcc3b5aa765d61d8327deb882cf99", "unknown password hash format"),
        ("$2b$12$tooshort", "malformed bcrypt hash"),
        ("$2b$31$" + "a" * 53, "too costly to verify"),
        ("pbkdf2_sha256$many$salt$aGFzaA==", "malformed Django pbkdf2_sha256 hash"),
        ("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ", "malformed argon2 hash"),
        ("pbkdf2:sha256:1000$salt$nothex", "malformed Werkzeug hash"),
        ("$firebase-scrypt$m=14,r=8$Bw==$!!$c2FsdA==$aGFzaA==", "malformed Firebase scrypt hash"),
    ],
)
def test_an_unknown_or_malformed_hash_is_that_lines_error_and_never_echoed(
    client: TestClient, admin_headers: dict[str, str], password_hash: str, reason: str
) -> None:
    lines = [
        {"email": "bad@example.com", "password_hash": password_hash},
        {"email": "good@example.com", "password_hash": MAKERS["bcrypt-2b"](SECRET)},
    ]
    bad, good = imported(client, admin_headers, lines)
    assert bad["status"] == "error" and reason in bad["reason"], bad
    assert password_hash not in bad["reason"] and password_hash[-12:] not in bad["reason"]
    assert stored("bad@example.com") is None
    assert good["status"] == "created"


def test_a_wrong_password_on_an_imported_account_costs_what_an_unknown_email_costs(
    settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The login timing rule: an unknown email spends one verification at the configured cost
    (the dummy hash). A cheap imported hash (Django pbkdf2 at 1,000 iterations) must not
    answer a wrong password sooner: it spends that verification too, besides its own."""
    settings(BCRYPT_ROUNDS=10)  # ~50 ms a check: far above a 1,000-iteration pbkdf2 (~1 ms)
    passwords._context.cache_clear()
    passwords._dummy_hash.cache_clear()
    monkeypatch.setattr(passwords, "_spend_one_check", counted := _Counted())
    cheap = django_pbkdf2_sha256(SECRET, iterations=1000)

    def timed(hashed: str | None) -> float:
        """CPU seconds of the process (the check runs in a pool thread): unlike the wall
        time, it does not move with the load of a shared machine."""
        began = time.process_time()
        assert asyncio.run(passwords.verify_password("not the password", hashed)) == (False, None)
        return time.process_time() - began

    try:
        unknown = statistics.median(timed(None) for _ in range(5))
        imported_wrong = statistics.median(timed(cheap) for _ in range(5))
    finally:
        passwords._context.cache_clear()
        passwords._dummy_hash.cache_clear()
    assert counted.calls == 10  # one check at the configured cost each, known or not
    assert imported_wrong >= 0.8 * unknown, (imported_wrong, unknown)


class _Counted:
    def __init__(self) -> None:
        self.calls = 0
        self.real = passwords._spend_one_check

    def __call__(self) -> None:
        self.calls += 1
        self.real()
