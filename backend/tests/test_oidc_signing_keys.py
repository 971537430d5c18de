"""The OpenID Connect signing keys (OIDC.md revision 2): RS256 always, ES256 for clients
that register it; key rotation that breaks no client (`manage keys rotate` / `list`)."""

from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.models.user import User
from tests.utils.oidc import ISSUER, oauth_tokens


@pytest.fixture(autouse=True)
def issuer(settings: Callable[..., Settings]) -> None:
    settings(PUBLIC_URL=ISSUER, RATE_LIMIT_ENABLED=False)


def jwks(client: TestClient) -> dict[str, Any]:
    answer = client.get("/.well-known/jwks.json")
    assert answer.status_code == 200
    return dict(answer.json())


def verified(client: TestClient, token: str, audience: str) -> dict[str, Any]:
    """`token` checked as a relying party does: PyJWT, the key the JWKS names by its kid."""
    header = pyjwt.get_unverified_header(token)
    key = pyjwt.PyJWKSet.from_dict(jwks(client))[header["kid"]]
    return dict(
        pyjwt.decode(token, key.key, algorithms=[header["alg"]], audience=audience, issuer=ISSUER)
    )


def test_discovery_lists_rs256_first_and_es256(client: TestClient) -> None:
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    published = {jwk["alg"] for jwk in jwks(client)["keys"]}
    assert published == {"RS256", "ES256"}


def test_id_tokens_are_rs256_by_default_and_verify_against_the_jwks(
    client: TestClient, db: Session, user: User
) -> None:
    tokens = oauth_tokens(client, db, user)
    registered = tokens["registered"]
    assert registered.id_token_signed_response_alg == "RS256"
    assert pyjwt.get_unverified_header(tokens["id_token"])["alg"] == "RS256"
    assert verified(client, tokens["id_token"], registered.client_id)["sub"] == str(user.id)
    # Access tokens: the RS256 key too, for every resource server's library.
    assert pyjwt.get_unverified_header(tokens["access_token"])["alg"] == "RS256"
    assert verified(client, tokens["access_token"], ISSUER)["sub"] == str(user.id)


def test_a_client_registered_with_es256_gets_es256_id_tokens(
    client: TestClient, db: Session, user: User
) -> None:
    tokens = oauth_tokens(client, db, user, id_token_signed_response_alg="ES256")
    registered = tokens["registered"]
    header = pyjwt.get_unverified_header(tokens["id_token"])
    assert header["alg"] == "ES256"
    assert verified(client, tokens["id_token"], registered.client_id)["sub"] == str(user.id)
    # A refresh gives an ES256 ID token again.
    refreshed = client.post(
        f"{ISSUER}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(registered.client_id, str(registered.client_secret)),
    ).json()
    assert pyjwt.get_unverified_header(refreshed["id_token"])["alg"] == "ES256"
    assert pyjwt.get_unverified_header(refreshed["access_token"])["alg"] == "RS256"
