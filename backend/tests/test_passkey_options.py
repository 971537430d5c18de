"""Passkey sign-in options (`/auth/passkey/options`): the same answer for any email, a budget
per client address, and a bounded number of stored challenges under a flood."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.crud.audit import Actor
from app.crud.passkeys import EXPIRED_BATCH, LIVE_PER_ADDRESS
from app.db import get_engine, transaction
from app.main import app
from app.models.common import utcnow
from app.models.passkey import CeremonyKind, WebAuthnChallenge
from app.models.user import User
from app.passkeys import ceremonies
from tests.test_passkeys import register
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.webauthn import SoftAuthenticator, unb64url

FLOODER, NEIGHBOUR = "203.0.113.66", "198.51.100.7"


@pytest.fixture(autouse=True)
def no_rate_limit(settings: Callable[..., Settings]) -> None:
    settings(RATE_LIMIT_ENABLED=False)


def from_address(address: str) -> TestClient:
    """A client whose requests come from `address` (the session's app, no second lifespan)."""
    return TestClient(app, client=(address, 50000))


def options_for(client: TestClient, email: str | None = None) -> Any:
    return client.post(api("/auth/passkey/options"), json={"email": email} if email else {})


def sign_in_with(client: TestClient, flow: dict[str, Any], device: SoftAuthenticator) -> int:
    credential = device.get(flow["options"])
    body = {"flow_id": flow["flow_id"], "credential": credential}
    return client.post(api("/auth/passkey/login"), json=body).status_code


def challenges(db: Session, address: str | None = None) -> int:
    db.rollback()  # a fresh read of what the app wrote
    query = select(func.count()).select_from(WebAuthnChallenge)
    if address is not None:
        query = query.where(col(WebAuthnChallenge.address) == address)
    return db.exec(query).one()


def test_options_for_known_emails_with_one_or_three_passkeys_and_an_unknown_one_look_alike(
    client: TestClient, user: User, moderator: User
) -> None:
    one = SoftAuthenticator()
    assert register(client, auth_header(login(client, user.email)), one).status_code == 201
    three = [SoftAuthenticator() for _ in range(3)]
    moderator_headers = auth_header(login(client, moderator.email, PASSWORD))
    for device in three:
        assert register(client, moderator_headers, device).status_code == 201

    answers = {
        email: options_for(client, email)
        for email in (user.email, moderator.email, "nobody@example.com")
    }

    def shape(options: dict[str, Any]) -> dict[str, Any]:
        """Everything but the challenge's random bytes, and the lengths of the listed ids."""
        allowed = options.get("allowCredentials", [])
        return {
            **{key: value for key, value in options.items() if key != "challenge"},
            "challenge": len(unb64url(options["challenge"])),
            "allowCredentials": [len(unb64url(c["id"])) for c in allowed],
        }

    shapes = [shape(answer.json()["options"]) for answer in answers.values()]
    assert all(answer.status_code == 200 for answer in answers.values())
    assert shapes[0] == shapes[1] == shapes[2], shapes
    assert [sorted(answer.json()) for answer in answers.values()] == [["flow_id", "options"]] * 3
    # An email still binds the flow to its account: its own passkey signs in, another's not.
    assert sign_in_with(client, options_for(client, user.email).json(), one) == 200
    assert sign_in_with(client, options_for(client, moderator.email).json(), three[2]) == 200
    assert sign_in_with(client, options_for(client, user.email).json(), three[0]) == 401


def test_the_31st_options_call_in_a_minute_from_one_address_is_429_and_others_still_get_theirs(
    settings: Callable[..., Settings], client: TestClient, user: User
) -> None:
    settings(RATE_LIMIT_ENABLED=True)  # RATE_LIMIT_PASSKEY_OPTIONS: the default, 30/minute
    flooder, neighbour = from_address(FLOODER), from_address(NEIGHBOUR)
    emails = [user.email, "nobody@example.com", None]

    answers = [options_for(flooder, emails[i % 3]) for i in range(30)]
    assert [answer.status_code for answer in answers] == [200] * 30
    refused = [options_for(flooder, email) for email in emails]
    assert [answer.status_code for answer in refused] == [429] * 3
    assert all(int(answer.headers["retry-after"]) > 0 for answer in refused)
    # over the budget too, a known email is answered as an unknown one
    assert refused[0].json() == refused[1].json() == refused[2].json()
    assert options_for(neighbour, user.email).status_code == 200
    assert options_for(neighbour).status_code == 200


def test_a_flood_of_options_calls_keeps_a_bounded_number_of_challenges(
    client: TestClient, user: User, db: Session
) -> None:
    device = SoftAuthenticator()
    assert register(client, auth_header(login(client, user.email)), device).status_code == 201
    neighbour = from_address(NEIGHBOUR)
    waiting = options_for(neighbour).json()  # a sign-in under way from another address
    flooder = from_address(FLOODER)

    flows = [options_for(flooder).json() for _ in range(LIVE_PER_ADDRESS + 25)]

    assert challenges(db, FLOODER) == LIVE_PER_ADDRESS
    assert challenges(db) <= LIVE_PER_ADDRESS + 2  # the neighbour's and the registration's
    assert sign_in_with(flooder, flows[-1], device) == 200  # the newest still work
    assert sign_in_with(flooder, flows[0], device) == 401  # the oldest were forgotten
    assert sign_in_with(neighbour, waiting, device) == 200  # another address lost nothing


def test_expired_challenges_are_deleted_in_bounded_batches_as_new_ones_are_written(
    client: TestClient, db: Session
) -> None:
    expired = utcnow() - timedelta(minutes=1)
    stale = 2 * EXPIRED_BATCH + 50
    db.add_all(
        WebAuthnChallenge(
            kind=CeremonyKind.AUTHENTICATION,
            challenge_hash=f"{n:064x}",
            expires_at=expired,
            address=f"192.0.2.{n % 200}",
        )
        for n in range(stale)
    )
    db.commit()

    assert options_for(client).status_code == 200
    assert challenges(db) == stale - EXPIRED_BATCH + 1
    for _ in range(2):
        options_for(client)
    assert challenges(db) == 3  # the expired ones gone, the three new ones live


def test_concurrent_options_calls_from_one_address_fail_none_and_stay_bounded(
    client: TestClient, db: Session
) -> None:
    """Several workers at once (threads with sessions of their own): the deletes skip each
    other's rows instead of waiting or deadlocking, and the address stays near its bound."""
    threads, calls = 8, 80

    def call(_: int) -> None:
        with Session(get_engine()) as session:
            transaction(ceremonies.login_options, session, email=None, actor=Actor(ip=FLOODER))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(call, range(calls)))  # re-raises any call's error

    assert LIVE_PER_ADDRESS <= challenges(db, FLOODER) <= LIVE_PER_ADDRESS + threads
    assert options_for(from_address(FLOODER)).status_code == 200
    assert challenges(db, FLOODER) == LIVE_PER_ADDRESS


def test_a_call_that_waited_keeps_its_own_challenge(db: Session) -> None:
    """A call whose expiry time was read before it waited for the write lock, while other
    calls committed LIVE_PER_ADDRESS rows expiring later, still keeps (and answers) its own
    challenge: the bound trims the others."""
    from app.crud import passkeys as crud

    later = utcnow() + timedelta(minutes=10)
    for n in range(LIVE_PER_ADDRESS):
        db.add(
            WebAuthnChallenge(
                kind=CeremonyKind.AUTHENTICATION,
                challenge_hash=f"later-{n}",
                expires_at=later,
                address=FLOODER,
            )
        )
    db.commit()
    with Session(get_engine()) as session:
        row = transaction(
            lambda s: (
                crud.add_challenge(
                    s,
                    kind=CeremonyKind.AUTHENTICATION,
                    digest="mine",
                    expires_at=utcnow() + timedelta(minutes=1),
                    user_id=None,
                    address=FLOODER,
                ).id
            ),
            session,
        )
    kept = db.exec(select(WebAuthnChallenge).where(col(WebAuthnChallenge.id) == row)).first()
    assert kept is not None
    assert challenges(db, FLOODER) == LIVE_PER_ADDRESS
