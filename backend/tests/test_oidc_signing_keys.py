"""The OpenID Connect signing keys (OIDC.md revision 2): RS256 always, ES256 for clients
that register it; key rotation that breaks no client (`manage keys rotate` / `list`)."""

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.core import keys
from app.core.config import Settings
from app.db import get_engine
from app.models.signing_key import SigningKeyRow
from app.models.user import User
from tests.test_cli import manage, refused
from tests.utils import api
from tests.utils.oidc import ISSUER, USERINFO, oauth_tokens


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


# --- Key rotation that breaks no client ------------------------------------------------


def rotate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ahead: int) -> dict[str, str]:
    """`manage keys rotate` with KEY_PUBLISH_AHEAD_SECONDS=`ahead`: the new kid by algorithm.
    This process then reads the key table again, as the process that rotates does."""
    monkeypatch.setenv("KEY_PUBLISH_AHEAD_SECONDS", str(ahead))
    done = manage("keys", "rotate", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    staged = dict(line.split()[:3:2] for line in done.stdout.strip().splitlines())
    assert staged.keys() == {"RS256", "ES256"}
    keys.forget()
    return staged


def kid_of(token: str) -> str:
    return str(pyjwt.get_unverified_header(token)["kid"])


def published_kids(client: TestClient) -> list[str]:
    return [jwk["kid"] for jwk in jwks(client)["keys"]]


def move_activation(kids: Iterable[str], seconds_ago: float) -> None:
    """Move the clock for the staged keys: as if they had activated `seconds_ago`."""
    with Session(get_engine()) as session:
        for kid in kids:
            row = session.get(SigningKeyRow, kid)
            assert row is not None
            row.activates_at = datetime.now(UTC) - timedelta(seconds=seconds_ago)
            session.add(row)
        session.commit()
    keys.forget()


def accepted_everywhere(client: TestClient, tokens: dict[str, Any]) -> dict[str, object]:
    """What the service itself says of `tokens` (issued before a rotation): userinfo, its own
    API, introspection, and the ID token as id_token_hint."""
    registered = tokens["registered"]
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    introspected = client.post(
        f"{ISSUER}/oauth/introspect",
        data={"token": tokens["access_token"]},
        auth=(registered.client_id, str(registered.client_secret)),
    ).json()
    logout = client.get(f"{ISSUER}/oauth/logout", params={"id_token_hint": tokens["id_token"]})
    return {
        "userinfo": client.get(USERINFO, headers=bearer).status_code,
        "me": client.get(api("/users/me"), headers=bearer).status_code,
        "introspection": introspected["active"],
        "id_token_hint": logout.status_code,
    }


ACCEPTED = {"userinfo": 200, "me": 200, "introspection": True, "id_token_hint": 200}


def test_a_rotated_key_is_published_first_signs_later_and_the_old_one_stays_until_its_tokens_expire(
    client: TestClient, db: Session, user: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = oauth_tokens(client, db, user)
    es256_before = oauth_tokens(client, db, user, id_token_signed_response_alg="ES256")
    old = {"RS256": kid_of(before["access_token"]), "ES256": kid_of(es256_before["id_token"])}
    bad_hint = client.get(f"{ISSUER}/oauth/logout", params={"id_token_hint": "x.y.z"})
    assert bad_hint.status_code == 400  # what a refused hint looks like

    new = rotate(monkeypatch, tmp_path, ahead=60)
    # Published at once, next to the keys that sign; signing nothing yet.
    kids = published_kids(client)
    assert set(new.values()) | set(old.values()) <= set(kids)
    staged = oauth_tokens(client, db, user, id_token_signed_response_alg="ES256")
    assert kid_of(staged["access_token"]) == old["RS256"]
    assert kid_of(staged["id_token"]) == old["ES256"]
    listed = manage("keys", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    states = {line.split()[0]: line.split()[2] for line in listed.stdout.splitlines()[1:]}
    assert states == {old["RS256"]: "active", old["ES256"]: "active"} | dict.fromkeys(
        new.values(), "next"
    )
    assert "PRIVATE" not in listed.stdout

    # KEY_PUBLISH_AHEAD_SECONDS later (the clock moved through the rows; the live test in
    # test_key_rotation_live.py waits for real), the new keys sign.
    move_activation(new.values(), seconds_ago=1)
    after = oauth_tokens(client, db, user, id_token_signed_response_alg="ES256")
    assert kid_of(after["access_token"]) == new["RS256"]
    assert kid_of(after["id_token"]) == new["ES256"]
    assert verified(client, after["id_token"], after["registered"].client_id)["sub"] == str(user.id)
    # The old keys: still published, and the service still accepts what they signed.
    assert set(old.values()) <= set(published_kids(client))
    assert accepted_everywhere(client, before) == ACCEPTED
    assert accepted_everywhere(client, es256_before) == ACCEPTED
    assert verified(client, before["access_token"], ISSUER)["sub"] == str(user.id)
    listed = manage("keys", "list", cwd=tmp_path)
    states = {line.split()[0]: line.split()[2] for line in listed.stdout.splitlines()[1:]}
    assert states == dict.fromkeys(old.values(), "retired") | dict.fromkeys(new.values(), "active")

    # The last token an old key signed has expired (an ID token still serves as
    # id_token_hint for a browser session's lifetime): the old key leaves, the new stays.
    move_activation(new.values(), seconds_ago=keys.retention_s() - 30)
    assert set(old.values()) <= set(published_kids(client))
    move_activation(new.values(), seconds_ago=keys.retention_s() + 1)
    assert published_kids(client) == [new["RS256"], new["ES256"]]
    assert accepted_everywhere(client, before) == {
        "userinfo": 401, "me": 401, "introspection": False, "id_token_hint": 400,
    }  # fmt: skip
    assert accepted_everywhere(client, after) == ACCEPTED


def test_rotating_again_while_a_key_is_staged_is_refused(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staged = rotate(monkeypatch, tmp_path, ahead=3600)
    again = manage("keys", "rotate", "--algorithm", "RS256", cwd=tmp_path)
    assert "is staged already" in refused(again) and staged["RS256"] in again.stderr


def test_staged_keys_are_encrypted_under_the_secret_key(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rotate(monkeypatch, tmp_path, ahead=0)
    with Session(get_engine()) as session:
        rows = session.exec(select(SigningKeyRow)).all()
    assert len(rows) == 2
    for row in rows:
        assert "PRIVATE KEY" not in row.private_key
        assert keys.signing_key(row.algorithm).kid == row.kid  # ahead=0: signs at once
