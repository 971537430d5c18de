"""The token endpoint: single-use codes bound to what they were issued for, RFC 6749 §5.2
errors, client authentication, refresh rotation shared with /auth/refresh, and which
tokens are accepted where."""

import threading
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from authlib.integrations.base_client import OAuthError
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from app.core.config import Settings
from app.db import get_engine
from app.models.client import AuthorizationCode, ClientCreated
from app.models.common import utcnow
from app.models.user import User
from tests.utils import PASSWORD, api, auth_header, login, refresh_tokens
from tests.utils.account import events
from tests.utils.oidc import (
    ISSUER,
    REDIRECT_URI,
    TOKEN,
    USERINFO,
    browser,
    exchange,
    get_code,
    make_client,
    oauth_client,
    oauth_tokens,
    refresh_grant,
    sign_in,
    start,
)
from tests.utils.server import running_server

RACE_ROUNDS = 5


@pytest.fixture(autouse=True)
def issuer(settings: Callable[..., Settings]) -> None:
    settings(PUBLIC_URL=ISSUER, RATE_LIMIT_ENABLED=False)


def test_a_code_exchanged_twice_fails_and_revokes_what_the_first_exchange_issued(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=True)
    code, started = get_code(client, registered, user, scope="openid offline_access account")
    first = exchange(client, registered, code, started.verifier)
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    tokens = first.json()
    assert client.get(api("/users/me"), headers=auth_header(tokens["access_token"])).is_success

    second = exchange(client, registered, code, started.verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert (
        client.get(api("/users/me"), headers=auth_header(tokens["access_token"])).status_code == 401
    )
    oauth = oauth_client(client, registered)
    with pytest.raises(OAuthError) as refused:
        oauth.refresh_token(TOKEN, refresh_token=tokens["refresh_token"])
    assert refused.value.error == "invalid_grant"
    assert len(events("oauth.code_reuse_detected")) == 1
    assert len(events("oauth.token_issued")) == 1


def exchange_twice_at_once(
    base: str, registered: ClientCreated, code: str, verifier: str
) -> list[int]:
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def send() -> None:
        with httpx.Client(base_url=base) as http:
            barrier.wait()
            response = exchange(http, registered, code, verifier, token_url="/oauth/token")
            statuses.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_two_exchanges_of_one_code_at_once_succeed_once(
    client: TestClient, db: Session, user: User
) -> None:
    """Against a real server (on the test database): each round signs in here, then sends
    the code's two exchanges at the same moment."""
    registered = make_client(db, first_party=True)
    with running_server({"PUBLIC_URL": ISSUER, "RATE_LIMIT_ENABLED": "false"}) as base:
        for _ in range(RACE_ROUNDS):
            code, started = get_code(client, registered, user)
            assert exchange_twice_at_once(base, registered, code, started.verifier) == [200, 400]
    assert len(events("oauth.token_issued")) == RACE_ROUNDS
    assert len(events("oauth.code_reuse_detected")) == RACE_ROUNDS


@pytest.mark.parametrize("mismatch", ["client", "redirect_uri", "verifier", "expired"])
def test_a_code_is_bound_to_its_client_redirect_uri_verifier_and_60_seconds(
    client: TestClient, db: Session, user: User, mismatch: str
) -> None:
    registered = make_client(
        db, first_party=True, redirect_uris=[REDIRECT_URI, "https://app.example.com/other"]
    )
    other = make_client(db, first_party=True, name="Other")
    code, started = get_code(client, registered, user)
    verifier, redirect_uri, auth = started.verifier, REDIRECT_URI, None
    if mismatch == "client":
        auth = (other.client_id, str(other.client_secret))
    elif mismatch == "redirect_uri":
        redirect_uri = "https://app.example.com/other"
    elif mismatch == "verifier":
        verifier = "x" * 43
    else:
        with Session(get_engine()) as session:
            [row] = session.exec(select(AuthorizationCode)).all()
            assert row.expires_at - row.created_at == timedelta(seconds=60)
            session.exec(update(AuthorizationCode).values(expires_at=utcnow()))
            session.commit()
    refused = exchange(client, registered, code, verifier, redirect_uri=redirect_uri, auth=auth)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert events("oauth.token_issued") == []


def test_a_code_whose_sign_in_ended_is_refused_and_spent(
    client: TestClient, db: Session, user: User
) -> None:
    """The refusal is remembered: the code stays used, and presented again (the user active
    again) it is a replay."""
    registered = make_client(db, first_party=True)
    code, started = get_code(client, registered, user)
    with Session(get_engine()) as session:
        session.exec(update(User).values(is_active=False))
        session.commit()
    refused = exchange(client, registered, code, started.verifier)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    with Session(get_engine()) as session:
        [row] = session.exec(select(AuthorizationCode)).all()
        assert row.used_at is not None
        session.exec(update(User).values(is_active=True))
        session.commit()
    again = exchange(client, registered, code, started.verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert len(events("oauth.code_reuse_detected")) == 1
    assert events("oauth.token_issued") == []


def test_the_nonce_goes_into_the_id_token_from_the_code(
    client: TestClient, db: Session, user: User
) -> None:
    import jwt as pyjwt

    registered = make_client(db, first_party=True)
    code, started = get_code(client, registered, user)
    id_token = exchange(client, registered, code, started.verifier).json()["id_token"]
    assert pyjwt.decode(id_token, options={"verify_signature": False})["nonce"] == started.nonce


# --- errors and client authentication -----------------------------------------------------


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, "unauthorized_client"),  # not its grant
        ({"grant_type": "authorization_code"}, "invalid_request"),
        (
            {
                "grant_type": "authorization_code",
                "code": "nope",
                "redirect_uri": REDIRECT_URI,
                "code_verifier": "v" * 43,
            },
            "invalid_grant",
        ),
        ({"grant_type": "refresh_token", "refresh_token": "not-a-token"}, "invalid_grant"),
    ],
)
def test_token_errors_follow_rfc_6749(
    client: TestClient, db: Session, form: dict[str, str], error: str
) -> None:
    registered = make_client(db)
    response = client.post(
        TOKEN, data=form, auth=(registered.client_id, str(registered.client_secret))
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error and response.json()["error_description"]
    assert response.headers["cache-control"] == "no-store"


def test_a_json_body_or_a_repeated_parameter_is_invalid_request(
    client: TestClient, db: Session
) -> None:
    registered = make_client(db)
    auth = (registered.client_id, str(registered.client_secret))
    as_json = client.post(TOKEN, json={"grant_type": "refresh_token"}, auth=auth)
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    twice = client.post(
        TOKEN,
        content="grant_type=refresh_token&grant_type=authorization_code",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=auth,
    )
    assert twice.status_code == 400 and twice.json()["error"] == "invalid_request"


def test_failed_client_authentication_is_401_invalid_client(
    client: TestClient, db: Session
) -> None:
    registered = make_client(db)
    form = {"grant_type": "refresh_token", "refresh_token": "x"}
    basic = client.post(TOKEN, data=form, auth=(registered.client_id, "wrong-secret"))
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_client"
    assert basic.headers["www-authenticate"].startswith("Basic")
    posted = client.post(
        TOKEN, data={**form, "client_id": registered.client_id, "client_secret": "wrong"}
    )
    assert posted.status_code == 401 and posted.json()["error"] == "invalid_client"
    assert not posted.headers.get("www-authenticate", "").startswith("Basic")
    missing = client.post(TOKEN, data={**form, "client_id": registered.client_id})
    assert missing.status_code == 401
    unknown = client.post(TOKEN, data={**form, "client_id": "nobody"})
    assert unknown.status_code == 401
    both = client.post(
        TOKEN,
        data={**form, "client_secret": str(registered.client_secret)},
        auth=(registered.client_id, str(registered.client_secret)),
    )
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"


def test_client_secret_post_and_a_public_client_without_secret(
    client: TestClient, db: Session, user: User
) -> None:
    confidential = make_client(db, first_party=True)
    code, started = get_code(client, confidential, user)
    posted = client.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": started.verifier,
            "client_id": confidential.client_id,
            "client_secret": str(confidential.client_secret),
        },
    )
    assert posted.status_code == 200, posted.text

    public = make_client(db, first_party=True, public=True, name="SPA")
    oauth = oauth_client(client, public, scope="openid offline_access")
    started = start(oauth)
    answer = sign_in(browser(client), started.url, user.email, PASSWORD)
    token = oauth.fetch_token(
        TOKEN, authorization_response=answer.headers["location"], code_verifier=started.verifier
    )
    renewed = oauth.refresh_token(TOKEN, refresh_token=token["refresh_token"])
    assert renewed["access_token"]


def test_a_client_without_the_refresh_token_grant_gets_no_refresh_token(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=True, grant_types=["authorization_code"])
    code, started = get_code(client, registered, user, scope="openid offline_access account")
    tokens = exchange(client, registered, code, started.verifier).json()
    assert "refresh_token" not in tokens
    refused = client.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(registered.client_id, str(registered.client_secret)),
    )
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"


# --- refresh ------------------------------------------------------------------------------


def test_a_refresh_token_is_bound_to_its_client(
    client: TestClient, db: Session, user: User
) -> None:
    tokens = oauth_tokens(client, db, user, public=True)
    other = make_client(db, first_party=True, public=True, name="Other SPA")
    refused = refresh_grant(client, other, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert refresh_grant(client, tokens["registered"], tokens["refresh_token"]).status_code == 200


def test_refresh_may_narrow_the_scope_but_not_widen_it(
    client: TestClient, db: Session, user: User
) -> None:
    import jwt as pyjwt

    tokens = oauth_tokens(client, db, user)
    wider = refresh_grant(
        client, tokens["registered"], tokens["refresh_token"], scope="openid roles"
    )
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    narrower = refresh_grant(client, tokens["registered"], tokens["refresh_token"], scope="openid")
    assert narrower.status_code == 200, narrower.text
    assert narrower.json()["scope"] == "openid"
    claims = pyjwt.decode(narrower.json()["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "openid"
    # The session keeps what was granted: the next refresh may ask for all of it again.
    again = refresh_grant(client, tokens["registered"], narrower.json()["refresh_token"])
    assert set(again.json()["scope"].split()) == {"openid", "email", "offline_access", "account"}


def test_the_reuse_grace_of_auth_refresh_applies(
    client: TestClient, db: Session, user: User, settings: Callable[..., Settings]
) -> None:
    settings(REFRESH_REUSE_GRACE_SECONDS=30)
    tokens = oauth_tokens(client, db, user)
    first = refresh_grant(client, tokens["registered"], tokens["refresh_token"])
    retry = refresh_grant(client, tokens["registered"], tokens["refresh_token"])
    assert first.status_code == 200 and retry.status_code == 200
    assert client.get(
        api("/users/me"), headers=auth_header(first.json()["access_token"])
    ).is_success


def test_a_reused_refresh_token_is_invalid_grant_and_ends_the_session(
    client: TestClient, db: Session, user: User, settings: Callable[..., Settings]
) -> None:
    """Reuse outside the grace, at the token endpoint: answered as OAuth answers (not
    /auth/refresh's 401), and the session is revoked and audited all the same."""
    settings(REFRESH_REUSE_GRACE_SECONDS=0)
    tokens = oauth_tokens(client, db, user)
    first = refresh_grant(client, tokens["registered"], tokens["refresh_token"])
    assert first.status_code == 200
    reused = refresh_grant(client, tokens["registered"], tokens["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert len(events("auth.refresh_reuse_detected")) == 1
    headers = auth_header(first.json()["access_token"])
    assert client.get(api("/users/me"), headers=headers).status_code == 401
    latest = refresh_grant(client, tokens["registered"], first.json()["refresh_token"])
    assert latest.status_code == 400 and latest.json()["error"] == "invalid_grant"


def test_oauth_and_service_refresh_tokens_do_not_cross(
    client: TestClient, db: Session, user: User
) -> None:
    tokens = oauth_tokens(client, db, user)
    assert refresh_tokens(client, tokens["refresh_token"]).status_code == 401
    service = login(client, user.email)
    crossed = refresh_grant(client, tokens["registered"], service["refresh_token"])
    assert crossed.status_code == 400 and crossed.json()["error"] == "invalid_grant"
    # Neither still works afterwards only because nothing was spent.
    assert refresh_grant(client, tokens["registered"], tokens["refresh_token"]).status_code == 200
    assert refresh_tokens(client, service["refresh_token"]).status_code == 200


def test_only_access_tokens_are_bearer_tokens(client: TestClient, db: Session, user: User) -> None:
    tokens = oauth_tokens(client, db, user)
    for token in (tokens["refresh_token"], tokens["id_token"]):
        assert client.get(api("/users/me"), headers=auth_header(token)).status_code == 401
        assert client.get(USERINFO, headers=auth_header(token)).status_code == 401
    assert refresh_tokens(client, tokens["access_token"]).status_code == 401


def test_userinfo_needs_an_oauth_access_token_with_openid(
    client: TestClient, db: Session, user: User
) -> None:
    service = login(client, user.email)
    refused = client.get(USERINFO, headers=auth_header(service["access_token"]))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert client.get(USERINFO).status_code == 401

    registered = make_client(db, first_party=True)
    code, started = get_code(client, registered, user, scope="email")
    access = exchange(client, registered, code, started.verifier).json()
    assert "id_token" not in access
    assert client.get(USERINFO, headers=auth_header(access["access_token"])).status_code == 403


def test_a_deactivated_user_or_a_deleted_client_ends_oauth_tokens(
    client: TestClient, db: Session, user: User, admin_headers: dict[str, str]
) -> None:
    tokens = oauth_tokens(client, db, user)
    other = oauth_tokens(client, db, user)
    bearer = auth_header(tokens["access_token"])
    client_id = tokens["registered"].client_id
    assert client.delete(api(f"/clients/{client_id}"), headers=admin_headers).status_code == 204
    assert client.get(api("/users/me"), headers=bearer).status_code == 401
    assert client.get(USERINFO, headers=bearer).status_code == 401

    assert client.get(api("/users/me"), headers=auth_header(other["access_token"])).is_success
    patch = client.patch(api(f"/users/{user.id}"), json={"is_active": False}, headers=admin_headers)
    assert patch.status_code == 200
    assert (
        client.get(api("/users/me"), headers=auth_header(other["access_token"])).status_code == 401
    )
    refused = refresh_grant(client, other["registered"], other["refresh_token"])
    assert refused.json()["error"] == "invalid_grant"


def test_an_access_token_for_another_audience_or_issuer_is_refused(
    client: TestClient, db: Session, user: User, settings: Callable[..., Settings]
) -> None:
    tokens = oauth_tokens(client, db, user)
    settings(PUBLIC_URL="https://another-issuer.example.com")
    assert (
        client.get(api("/users/me"), headers=auth_header(tokens["access_token"])).status_code == 401
    )


def test_codes_are_kept_a_day_after_expiry_then_forgotten(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=True)
    code, started = get_code(client, registered, user)
    assert exchange(client, registered, code, started.verifier).status_code == 200
    with Session(get_engine()) as session:
        session.exec(update(AuthorizationCode).values(expires_at=utcnow() - timedelta(hours=23)))
        session.commit()
    # Still known a while after it expired: the replay is detected as one.
    assert exchange(client, registered, code, started.verifier).json()["error"] == "invalid_grant"
    assert len(events("oauth.code_reuse_detected")) == 1
    with Session(get_engine()) as session:
        session.exec(update(AuthorizationCode).values(expires_at=utcnow() - timedelta(days=2)))
        session.commit()
    get_code(client, registered, user)  # the next code issued to this user clears old ones
    with Session(get_engine()) as session:
        assert len(session.exec(select(AuthorizationCode)).all()) == 1
