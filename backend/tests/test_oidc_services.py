"""OAuth for services and resource servers, driven by Authlib's OAuth2Client against the
discovered endpoints: client_credentials, introspection (RFC 7662), revocation (RFC 7009),
and what deleting a client or rotating its secret ends."""

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.core.keys import generate_private_key, signing_key
from app.models.client import ClientCreated
from app.models.user import User
from tests.utils import api, auth_header, login
from tests.utils.account import events
from tests.utils.oidc import (
    ISSUER,
    TOKEN,
    USERINFO,
    fresh_keys,
    get_code,
    make_client,
    oauth_tokens,
    refresh_grant,
)
from tests.utils.server import running_server

__all__ = ["fresh_keys"]  # a fixture, used by name
RACE_ROUNDS = 5
SERVICE = {"name": "Nightly job", "redirect_uris": [], "grant_types": ["client_credentials"]}


@pytest.fixture(autouse=True)
def issuer(settings: Callable[..., Settings]) -> None:
    settings(PUBLIC_URL=ISSUER, RATE_LIMIT_ENABLED=False)


def discovered(client: TestClient) -> dict[str, Any]:
    return client.get("/.well-known/oauth-authorization-server").json()


def authlib(client: TestClient, registered: ClientCreated, **kwargs: Any) -> OAuth2Client:
    """Authlib's client for `registered` (Basic, or client_id alone for a public one)."""
    return OAuth2Client(
        client_id=registered.client_id,
        client_secret=registered.client_secret,
        token_endpoint_auth_method="none" if registered.public else "client_secret_basic",
        revocation_endpoint_auth_method="none" if registered.public else "client_secret_basic",
        transport=client._transport,
        **kwargs,
    )


@pytest.fixture
def resource_server(client: TestClient, db: Session) -> Callable[[str], dict[str, Any]]:
    """Introspection as a resource server does it: its own confidential client, Authlib's
    introspect_token against the discovered endpoint."""
    registered = make_client(db, name="Orders API", redirect_uris=[], grant_types=["refresh_token"])

    def introspect(token: str) -> dict[str, Any]:
        endpoint = discovered(client)["introspection_endpoint"]
        response = authlib(client, registered).introspect_token(endpoint, token=token)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        return response.json()

    return introspect


def service_token(client: TestClient, registered: ClientCreated, **kwargs: Any) -> Any:
    return authlib(client, registered, **kwargs).fetch_token(
        discovered(client)["token_endpoint"], grant_type="client_credentials"
    )


# --- client_credentials --------------------------------------------------------------------


def test_client_credentials_gives_an_at_jwt_for_the_client_itself_and_no_refresh_token(
    client: TestClient, db: Session, resource_server: Callable[[str], dict[str, Any]]
) -> None:
    registered = make_client(db, **SERVICE, scopes=["openid", "roles", "email", "offline_access"])
    token = service_token(client, registered)
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    assert "refresh_token" not in token and "id_token" not in token
    assert token["scope"] == "roles email"  # openid and offline_access: a user's sign-in

    jwks = pyjwt.PyJWKClient(f"{ISSUER}/.well-known/jwks.json")
    jwks.fetch_data = lambda: client.get("/.well-known/jwks.json").json()  # type: ignore[method-assign]
    key = jwks.get_signing_key_from_jwt(token["access_token"])
    assert pyjwt.get_unverified_header(token["access_token"])["typ"] == "at+jwt"
    claims = pyjwt.decode(
        token["access_token"], key.key, algorithms=[key.algorithm_name], audience=ISSUER,
        issuer=ISSUER,
    )  # fmt: skip
    assert claims["sub"] == claims["client_id"] == registered.client_id
    assert "sid" not in claims and {"jti", "iat", "exp", "scope"} <= set(claims)

    answer = resource_server(token["access_token"])
    assert answer["active"] is True
    assert answer["sub"] == answer["client_id"] == registered.client_id
    assert answer["token_type"] == "Bearer" and "sid" not in answer
    assert answer["iss"] == ISSUER and answer["aud"] == ISSUER
    assert answer["exp"] == claims["exp"] and answer["iat"] == claims["iat"]
    [issued] = events("oauth.token_issued")
    assert issued.detail["grant"] == "client_credentials"
    assert issued.detail["client_id"] == registered.client_id


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_a_resource_server_verifies_a_client_token_with_the_jwks_for_rs256_and_es256(
    client: TestClient,
    db: Session,
    settings: Callable[..., Settings],
    tmp_path: Path,
    fresh_keys: None,
    resource_server: Callable[[str], dict[str, Any]],
    algorithm: str,
) -> None:
    """The PyJWT recipe of docs/resource-servers.md on a worker's token."""
    pem, kid = generate_private_key(algorithm)
    (tmp_path / "oidc.pem").write_bytes(pem)
    settings(OIDC_SIGNING_KEY_FILE=tmp_path / "oidc.pem")
    token = service_token(client, make_client(db, **SERVICE, scopes=["roles"]))["access_token"]
    header = pyjwt.get_unverified_header(token)
    # Access tokens are RS256, by the configured key when it is an RSA one.
    assert (header["alg"], header["kid"], header["typ"]) == (
        "RS256",
        kid if algorithm == "RS256" else signing_key("RS256").kid,
        "at+jwt",
    )
    key = pyjwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())[header["kid"]]
    claims = pyjwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        audience=ISSUER,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "sub", "client_id", "scope"]},
    )
    assert claims["sub"] == claims["client_id"] and claims["scope"] == "roles"
    assert resource_server(token)["active"] is True


def test_a_client_credentials_token_is_refused_by_the_service_own_api(
    client: TestClient, db: Session
) -> None:
    """It names no user: /api/v1 and userinfo answer 401."""
    token = service_token(client, make_client(db, **SERVICE))["access_token"]
    for path in ("/users/me", "/users", "/users/me/sessions", "/clients"):
        assert client.get(api(path), headers=auth_header(token)).status_code == 401, path
    assert client.get(USERINFO, headers=auth_header(token)).status_code == 401


@pytest.mark.parametrize(
    ("scope", "error"),
    [
        ("roles", None),
        ("email roles", None),
        ("profile", "invalid_scope"),  # not registered
        ("orders:read", "invalid_scope"),  # unknown
        ("openid", "invalid_scope"),
        ("roles offline_access", "invalid_scope"),
    ],
)
def test_client_credentials_scopes_are_bounded_by_the_registration(
    client: TestClient, db: Session, scope: str, error: str | None
) -> None:
    registered = make_client(db, **SERVICE, scopes=["email", "roles", "openid"])
    response = client.post(
        TOKEN,
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(registered.client_id, str(registered.client_secret)),
    )
    if error is None:
        assert response.status_code == 200, response.text
        assert response.json()["scope"] == scope
    else:
        assert response.status_code == 400 and response.json()["error"] == error


def test_client_credentials_needs_the_grant_and_a_confidential_client(
    client: TestClient, db: Session
) -> None:
    without = make_client(db)  # authorization_code and refresh_token only
    with pytest.raises(OAuthError) as refused:
        service_token(client, without)
    assert refused.value.error == "unauthorized_client"
    public = make_client(db, public=True, name="SPA")
    response = client.post(
        TOKEN, data={"grant_type": "client_credentials", "client_id": public.client_id}
    )
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"
    wrong = client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        auth=(make_client(db, **SERVICE).client_id, "wrong"),
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert events("oauth.token_issued") == []


# --- introspection --------------------------------------------------------------------------


def test_introspection_of_live_access_and_refresh_tokens(
    client: TestClient, db: Session, user: User, resource_server: Callable[[str], dict[str, Any]]
) -> None:
    tokens = oauth_tokens(client, db, user)
    registered = tokens["registered"]
    access = resource_server(tokens["access_token"])
    claims = pyjwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert access == {
        "active": True,
        "sub": str(user.id),
        "client_id": registered.client_id,
        "scope": "account email offline_access openid",
        "exp": claims["exp"],
        "iat": claims["iat"],
        "token_type": "Bearer",
        "iss": ISSUER,
        "aud": ISSUER,
        "sid": claims["sid"],
    }
    refresh = resource_server(tokens["refresh_token"])
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
    assert refresh["sid"] == claims["sid"] and refresh["sub"] == str(user.id)
    assert refresh["client_id"] == registered.client_id
    assert set(refresh["scope"].split()) == {"openid", "email", "offline_access", "account"}

    # Rotation: the spent refresh token is no longer active, the new one is.
    renewed = authlib(client, registered).refresh_token(
        discovered(client)["token_endpoint"], refresh_token=tokens["refresh_token"]
    )
    assert resource_server(tokens["refresh_token"]) == {"active": False}
    assert resource_server(renewed["refresh_token"])["active"] is True


def test_introspection_answers_only_active_false_for_anything_else(
    client: TestClient, db: Session, user: User, resource_server: Callable[[str], dict[str, Any]]
) -> None:
    own = login(client, user.email)  # the service's own /auth/login tokens are not OAuth's
    tokens = oauth_tokens(client, db, user)
    for token in (
        "not-a-token",
        "a.b.c",
        own["access_token"],
        own["refresh_token"],
        tokens["id_token"],
        tokens["access_token"][:-4] + "AAAA",
    ):
        assert resource_server(token) == {"active": False}


def test_introspection_needs_a_confidential_client(
    client: TestClient, db: Session, user: User
) -> None:
    tokens = oauth_tokens(client, db, user)
    endpoint = discovered(client)["introspection_endpoint"]
    form = {"token": tokens["access_token"]}
    anonymous = client.post(endpoint, data=form)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    public = make_client(db, public=True, name="SPA")
    as_public = client.post(endpoint, data={**form, "client_id": public.client_id})
    assert as_public.status_code == 401 and as_public.json()["error"] == "invalid_client"
    wrong = client.post(endpoint, data=form, auth=(tokens["registered"].client_id, "nope"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Basic")
    registered = tokens["registered"]
    posted = client.post(
        endpoint,
        data={
            **form,
            "client_id": registered.client_id,
            "client_secret": registered.client_secret,
        },
    )
    assert posted.status_code == 200 and posted.json()["active"] is True  # client_secret_post
    missing = client.post(endpoint, data={}, auth=(registered.client_id, registered.client_secret))
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


@pytest.mark.parametrize("ending", ["logout", "deactivate", "delete_user", "delete_client"])
def test_introspection_says_inactive_at_once_when_the_session_user_or_client_ends(
    client: TestClient,
    db: Session,
    user: User,
    admin_headers: dict[str, str],
    resource_server: Callable[[str], dict[str, Any]],
    ending: str,
) -> None:
    tokens = oauth_tokens(client, db, user)
    assert resource_server(tokens["access_token"])["active"] is True
    if ending == "logout":
        bearer = auth_header(tokens["access_token"])
        assert client.post(api("/auth/logout"), headers=bearer).status_code == 204
    elif ending == "deactivate":
        patch = {"is_active": False}
        assert client.patch(api(f"/users/{user.id}"), json=patch, headers=admin_headers).is_success
    elif ending == "delete_user":
        assert client.delete(api(f"/users/{user.id}"), headers=admin_headers).status_code == 204
    else:
        path = api(f"/clients/{tokens['registered'].client_id}")
        assert client.delete(path, headers=admin_headers).status_code == 204
    assert resource_server(tokens["access_token"]) == {"active": False}
    assert resource_server(tokens["refresh_token"]) == {"active": False}


def test_deleting_or_rotating_a_service_client_ends_its_tokens_and_old_secret(
    client: TestClient,
    db: Session,
    admin_headers: dict[str, str],
    resource_server: Callable[[str], dict[str, Any]],
) -> None:
    registered = make_client(db, **SERVICE)
    token = service_token(client, registered)["access_token"]
    assert resource_server(token)["active"] is True

    rotated = client.post(api(f"/clients/{registered.client_id}/secret"), headers=admin_headers)
    assert rotated.status_code == 200
    assert resource_server(token) == {"active": False}  # obtained with the old secret
    with pytest.raises(OAuthError) as refused:
        service_token(client, registered)
    assert refused.value.error == "invalid_client"
    renewed = ClientCreated(**{**registered.model_dump(), **rotated.json()})
    fresh = service_token(client, renewed)["access_token"]
    assert resource_server(fresh)["active"] is True

    path = api(f"/clients/{registered.client_id}")
    assert client.delete(path, headers=admin_headers).status_code == 204
    assert resource_server(fresh) == {"active": False}
    with pytest.raises(OAuthError) as gone:
        service_token(client, renewed)
    assert gone.value.error == "invalid_client"


def test_a_token_asked_for_with_the_old_secret_while_it_rotates_never_stays_live(
    client: TestClient,
    db: Session,
    admin_headers: dict[str, str],
    resource_server: Callable[[str], dict[str, Any]],
) -> None:
    """Against a real server, RACE_ROUNDS times: a client_credentials request with the
    secret and its rotation at the same moment; a token issued either way must be dead
    once the rotation has answered."""
    with running_server({"PUBLIC_URL": ISSUER, "RATE_LIMIT_ENABLED": "false"}) as base:
        for _ in range(RACE_ROUNDS):
            registered = make_client(db, **SERVICE)
            auth = (registered.client_id, str(registered.client_secret))
            answers = at_once(
                base,
                {
                    "token": (
                        "/oauth/token",
                        {"data": {"grant_type": "client_credentials"}, "auth": auth},
                    ),
                    "rotate": (
                        api(f"/clients/{registered.client_id}/secret"),
                        {"headers": admin_headers},
                    ),
                },
            )
            assert answers["rotate"].status_code == 200
            assert answers["token"].status_code in (200, 401), answers["token"].text
            if answers["token"].status_code == 200:
                assert resource_server(answers["token"].json()["access_token"]) == {"active": False}


def test_rotating_a_secret_keeps_users_sessions_but_the_old_secret_cannot_refresh(
    client: TestClient,
    db: Session,
    user: User,
    admin_headers: dict[str, str],
    resource_server: Callable[[str], dict[str, Any]],
) -> None:
    tokens = oauth_tokens(client, db, user)
    registered = tokens["registered"]
    rotated = client.post(api(f"/clients/{registered.client_id}/secret"), headers=admin_headers)
    refused = refresh_grant(client, registered, tokens["refresh_token"])
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert resource_server(tokens["access_token"])["active"] is True
    renewed = ClientCreated(**{**registered.model_dump(), **rotated.json()})
    assert refresh_grant(client, renewed, tokens["refresh_token"]).status_code == 200


# --- revocation -----------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["refresh_token", "access_token"])
def test_revoking_a_token_ends_its_session_and_every_token_of_it(
    client: TestClient,
    db: Session,
    user: User,
    resource_server: Callable[[str], dict[str, Any]],
    which: str,
) -> None:
    tokens = oauth_tokens(client, db, user)
    oauth = authlib(client, tokens["registered"])
    response = oauth.revoke_token(
        discovered(client)["revocation_endpoint"], token=tokens[which], token_type_hint=which
    )
    assert response.status_code == 200 and response.content == b""
    assert resource_server(tokens["access_token"]) == {"active": False}
    assert resource_server(tokens["refresh_token"]) == {"active": False}
    bearer = auth_header(tokens["access_token"])
    assert client.get(api("/users/me"), headers=bearer).status_code == 401
    assert client.get(USERINFO, headers=bearer).status_code == 401
    refused = refresh_grant(client, tokens["registered"], tokens["refresh_token"])
    assert refused.json()["error"] == "invalid_grant"
    [revoked] = events("oauth.token_revoked")
    assert revoked.detail["client_id"] == tokens["registered"].client_id
    assert revoked.subject_id == user.id
    sid = pyjwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]
    assert revoked.detail["session_id"] == sid and revoked.detail["token_type"]
    assert tokens[which] not in str(revoked.detail)


def test_a_public_client_revokes_its_own_tokens_with_its_client_id(
    client: TestClient, db: Session, user: User, resource_server: Callable[[str], dict[str, Any]]
) -> None:
    tokens = oauth_tokens(client, db, user, public=True)
    endpoint = discovered(client)["revocation_endpoint"]
    response = authlib(client, tokens["registered"]).revoke_token(
        endpoint, token=tokens["refresh_token"]
    )
    assert response.status_code == 200
    assert resource_server(tokens["access_token"]) == {"active": False}


def test_revocation_answers_200_for_unknown_tokens_and_ignores_other_clients_tokens(
    client: TestClient, db: Session, user: User, resource_server: Callable[[str], dict[str, Any]]
) -> None:
    tokens = oauth_tokens(client, db, user)
    service = make_client(db, **SERVICE)
    service_access = service_token(client, service)["access_token"]
    other = make_client(db, name="Other")
    endpoint = discovered(client)["revocation_endpoint"]
    revoker = authlib(client, other)
    for token in ("nope", tokens["access_token"], tokens["refresh_token"], service_access):
        assert revoker.revoke_token(endpoint, token=token).status_code == 200
    assert resource_server(tokens["access_token"])["active"] is True
    assert resource_server(service_access)["active"] is True
    assert events("oauth.token_revoked") == []

    assert client.post(endpoint, data={"token": "x"}).status_code == 401
    wrong = client.post(endpoint, data={"token": "x"}, auth=(other.client_id, "wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    missing = client.post(endpoint, data={}, auth=(other.client_id, str(other.client_secret)))
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


def test_a_client_credentials_token_is_revoked_alone(
    client: TestClient, db: Session, resource_server: Callable[[str], dict[str, Any]]
) -> None:
    service = make_client(db, **SERVICE)
    first = service_token(client, service)["access_token"]
    second = service_token(client, service)["access_token"]
    endpoint = discovered(client)["revocation_endpoint"]
    assert authlib(client, service).revoke_token(endpoint, token=first).status_code == 200
    assert resource_server(first) == {"active": False}
    assert resource_server(second)["active"] is True
    [revoked] = events("oauth.token_revoked")
    assert revoked.detail["client_token"] is True and revoked.subject_id is None


def at_once(base: str, requests: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """POST each request (name: path, httpx keyword arguments) at the same moment."""
    barrier = threading.Barrier(len(requests))
    answers: dict[str, httpx.Response] = {}

    def send(name: str) -> None:
        path, kwargs = requests[name]
        with httpx.Client(base_url=base) as http:
            barrier.wait()
            answers[name] = http.post(path, **kwargs)

    threads = [threading.Thread(target=send, args=(name,)) for name in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_revocation_and_refresh_at_once_never_leave_a_live_session(
    client: TestClient, db: Session, user: User, resource_server: Callable[[str], dict[str, Any]]
) -> None:
    """Against a real server, RACE_ROUNDS times: whichever request wins, afterwards every
    token of the session (the refresh's too, if it got any) is inactive."""
    with running_server({"PUBLIC_URL": ISSUER, "RATE_LIMIT_ENABLED": "false"}) as base:
        for _ in range(RACE_ROUNDS):
            tokens = oauth_tokens(client, db, user)
            registered = tokens["registered"]
            auth = (registered.client_id, str(registered.client_secret))
            refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
            answers = at_once(
                base,
                {
                    "refresh": ("/oauth/token", {"data": refresh, "auth": auth}),
                    "revoke": (
                        "/oauth/revoke",
                        {"data": {"token": tokens["refresh_token"]}, "auth": auth},
                    ),
                },
            )
            assert answers["revoke"].status_code == 200
            assert answers["refresh"].status_code in (200, 400), answers["refresh"].text
            issued = [tokens["access_token"], tokens["refresh_token"]]
            if answers["refresh"].status_code == 200:
                issued += [answers["refresh"].json()[k] for k in ("access_token", "refresh_token")]
            for token in issued:
                assert resource_server(token) == {"active": False}
            later = refresh_grant(client, registered, issued[-1])
            assert later.status_code == 400 and later.json()["error"] == "invalid_grant"


def test_code_reuse_after_revocation_still_ends_nothing_new(
    client: TestClient, db: Session, user: User, resource_server: Callable[[str], dict[str, Any]]
) -> None:
    """A code exchanged, its tokens revoked, then the code replayed: invalid_grant, and the
    reuse is audited (the session was already ended)."""
    registered = make_client(db, first_party=True)
    code, started = get_code(client, registered, user)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": registered.redirect_uris[0],
        "code_verifier": started.verifier,
    }
    credentials = (registered.client_id, str(registered.client_secret))
    tokens = client.post(TOKEN, data=form, auth=credentials).json()
    endpoint = discovered(client)["revocation_endpoint"]
    assert authlib(client, registered).revoke_token(endpoint, token=tokens["access_token"])
    replay = client.post(TOKEN, data=form, auth=credentials)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert [event.detail["revoked"] for event in events("oauth.code_reuse_detected")] == [False]
    assert resource_server(tokens["access_token"]) == {"active": False}
