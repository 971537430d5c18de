"""RS256 / ES256 keys, the JWKS, key rotation, algorithm confusion, `manage generate-key`."""

import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from app.core import keys
from app.core.config import Settings, SettingsError
from app.core.keys import key_id, key_set
from app.models.user import User
from tests.utils import api, auth_header, login

Configure = Callable[..., Settings]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
MANAGE = Path(sys.executable).parent / "manage"


@pytest.fixture(autouse=True)
def fresh_keys() -> Iterator[None]:
    """Each test loads the keys of the settings it chose, and leaves none cached behind."""
    key_set.cache_clear()
    keys.forget()
    yield
    key_set.cache_clear()
    keys.forget()


def new_key(algorithm: str) -> PrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def write_private(path: Path, key: PrivateKey) -> Path:
    path.write_bytes(private_pem(key))
    return path


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def use_key(
    settings: Configure, algorithm: str, private: Path, extra: list[Path] | None = None
) -> None:
    settings(
        ALGORITHM=algorithm, JWT_PRIVATE_KEY_FILE=private, JWT_EXTRA_PUBLIC_KEY_FILES=extra or []
    )
    key_set.cache_clear()
    keys.forget()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 JWT made by hand: libraries refuse a PEM as an HMAC secret, an attacker does not."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def me(client: TestClient, token: str) -> int:
    return client.get(api("/users/me"), headers=auth_header(token)).status_code


def test_kid_is_the_rfc7638_thumbprint() -> None:
    # The example key of RFC 7638, section 3.1, and its published thumbprint.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    modulus = int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big")
    key = rsa.RSAPublicNumbers(e=65537, n=modulus).public_key()
    assert key_id(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "ES256"])
def test_own_tokens_are_matched_to_their_key_by_their_header_alone(
    client: TestClient, user: User, settings: Configure, tmp_path: Path, algorithm: str
) -> None:
    """The per-request fast path: the header of the service's own tokens is known in advance.
    Should python-jose ever write it differently, tokens still work (the header is parsed)
    but every request pays for it: this test says so."""
    if algorithm != "HS256":
        use_key(settings, algorithm, write_private(tmp_path / "key.pem", new_key(algorithm)))
    tokens = login(client, user.email)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert token.split(".")[0] in key_set().by_header


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_asymmetric_tokens_work_end_to_end_and_verify_against_the_jwks(
    client: TestClient, user: User, settings: Configure, tmp_path: Path, algorithm: str
) -> None:
    private = new_key(algorithm)
    use_key(settings, algorithm, write_private(tmp_path / "key.pem", private))

    tokens = login(client, user.email)
    header = pyjwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == algorithm
    assert header["kid"] == key_id(private.public_key())
    me_response = client.get(api("/users/me"), headers=auth_header(tokens))
    assert me_response.status_code == 200
    assert me_response.json()["email"] == user.email
    refreshed = client.post(api("/auth/refresh"), json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    assert me(client, refreshed.json()["access_token"]) == 200

    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    jwks = response.json()
    # The JWT key (also the OIDC key of its algorithm) and the OIDC key of the other one.
    assert [jwk["alg"] for jwk in jwks["keys"]] == [
        algorithm,
        ({"RS256", "ES256"} - {algorithm}).pop(),
    ]
    jwk = jwks["keys"][0]
    assert jwk["kid"] == header["kid"]
    assert (jwk["use"], jwk["alg"]) == ("sig", algorithm)
    if algorithm == "RS256":
        assert jwk.keys() == {"kty", "kid", "use", "alg", "n", "e"}
        assert jwk["kty"] == "RSA"
    else:
        assert jwk.keys() == {"kty", "kid", "use", "alg", "crv", "x", "y"}
        assert (jwk["kty"], jwk["crv"]) == ("EC", "P-256")

    # A third-party library verifies our tokens with nothing but the published JWKS.
    published = pyjwt.PyJWKSet.from_dict(jwks)
    for token in (tokens["access_token"], refreshed.json()["refresh_token"]):
        verifying = published[pyjwt.get_unverified_header(token)["kid"]]
        assert verifying.algorithm_name == algorithm  # what the docs' snippet passes
        claims = pyjwt.decode(token, verifying.key, algorithms=[verifying.algorithm_name])
        assert claims["sub"] == str(user.id)


def test_jwks_of_hs256_holds_only_the_oidc_keys(client: TestClient) -> None:
    """The HMAC secret is never published; the OpenID Connect keys (ID tokens, OAuth access
    tokens), RS256 and ES256, are, generated once beside SECRET_KEY_FILE in development."""
    published = client.get("/.well-known/jwks.json").json()["keys"]
    assert published == [keys.signing_key("RS256").public_jwk, keys.signing_key("ES256").public_jwk]
    for jwk in published:
        assert jwk["kid"] != key_set().kid and "k" not in jwk and "d" not in jwk


def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(
    client: TestClient, user: User, settings: Configure, tmp_path: Path
) -> None:
    old, new = new_key("RS256"), new_key("RS256")
    old_file = write_private(tmp_path / "old.pem", old)
    use_key(settings, "RS256", old_file)
    before = login(client, user.email)

    old_public = tmp_path / "old.pub.pem"
    old_public.write_bytes(public_pem(old))
    use_key(settings, "RS256", write_private(tmp_path / "new.pem", new), [old_public])

    assert me(client, before["access_token"]) == 200
    after = login(client, user.email)
    assert pyjwt.get_unverified_header(after["access_token"])["kid"] == key_id(new.public_key())
    assert me(client, after["access_token"]) == 200
    kids = [jwk["kid"] for jwk in client.get("/.well-known/jwks.json").json()["keys"]]
    assert kids[:2] == [key_id(new.public_key()), key_id(old.public_key())]  # then the ES256 one
    # An old refresh token continues its session with tokens from the new key.
    refreshed = client.post(api("/auth/refresh"), json={"refresh_token": before["refresh_token"]})
    assert refreshed.status_code == 200
    new_kid = pyjwt.get_unverified_header(refreshed.json()["access_token"])["kid"]
    assert new_kid == key_id(new.public_key())

    # The old private key file itself may be listed as an extra key: only its public half is used.
    use_key(settings, "RS256", tmp_path / "new.pem", [old_file])
    assert me(client, before["access_token"]) == 200

    # Once the old key is dropped, its tokens stop verifying.
    use_key(settings, "RS256", tmp_path / "new.pem")
    response = client.get(api("/users/me"), headers=auth_header(before))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert me(client, after["access_token"]) == 200


@pytest.fixture
def rs256_claims_and_key(
    client: TestClient, user: User, settings: Configure, tmp_path: Path
) -> tuple[dict[str, Any], rsa.RSAPrivateKey]:
    """The claims of a real RS256 access token (live session), and the service's key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    use_key(settings, "RS256", write_private(tmp_path / "key.pem", private))
    token = login(client, user.email)["access_token"]
    assert me(client, token) == 200
    return pyjwt.decode(token, options={"verify_signature": False}), private


@pytest.mark.parametrize("secret", ["public key PEM", "SECRET_KEY"])
@pytest.mark.parametrize("kid", ["service kid", "hs256 kid", None])
def test_hs256_token_is_refused_when_an_asymmetric_key_is_configured(
    client: TestClient,
    settings: Configure,
    rs256_claims_and_key: tuple[dict[str, Any], rsa.RSAPrivateKey],
    secret: str,
    kid: str | None,
) -> None:
    claims, private = rs256_claims_and_key
    secret_key = settings().SECRET_KEY
    assert secret_key is not None
    hmac_secret = public_pem(private) if secret == "public key PEM" else secret_key.encode()
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid == "service kid":
        header["kid"] = key_id(private.public_key())
    elif kid == "hs256 kid":
        header["kid"] = hashlib.sha256(b"kid:" + secret_key.encode()).hexdigest()[:16]
    response = client.get(
        api("/users/me"), headers=auth_header(hs256_token(header, claims, hmac_secret))
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_unsigned_token_is_refused(
    client: TestClient, rs256_claims_and_key: tuple[dict[str, Any], rsa.RSAPrivateKey]
) -> None:
    claims, private = rs256_claims_and_key
    header = {"alg": "none", "typ": "JWT", "kid": key_id(private.public_key())}
    token = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}."
    assert me(client, token) == 401


def test_unknown_kid_and_a_stranger_key_are_refused(
    client: TestClient, rs256_claims_and_key: tuple[dict[str, Any], rsa.RSAPrivateKey]
) -> None:
    claims, private = rs256_claims_and_key
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    own_kid = key_id(private.public_key())
    assert me(client, pyjwt.encode(claims, private, "RS256", headers={"kid": own_kid})) == 200
    for signer, kid in (
        (private, key_id(stranger.public_key())),  # right key, unknown kid
        (stranger, key_id(stranger.public_key())),  # stranger key, its own kid
        (stranger, own_kid),  # stranger key claiming the service's kid
    ):
        assert me(client, pyjwt.encode(claims, signer, "RS256", headers={"kid": kid})) == 401


def test_es256_service_refuses_an_rs256_token(
    client: TestClient, user: User, settings: Configure, tmp_path: Path
) -> None:
    rsa_key = new_key("RS256")
    use_key(settings, "RS256", write_private(tmp_path / "rsa.pem", rsa_key))
    token = login(client, user.email)["access_token"]
    use_key(settings, "ES256", write_private(tmp_path / "ec.pem", new_key("ES256")))
    assert me(client, token) == 401


@pytest.mark.parametrize(
    ("algorithm", "content", "problem"),
    [
        ("RS256", lambda: None, "No such file or directory"),
        ("RS256", lambda: b"not a key\n", "not a PEM private key"),
        ("RS256", lambda: private_pem(new_key("ES256")), "not an RSA key"),
        ("ES256", lambda: private_pem(new_key("RS256")), "not an EC P-256 key"),
        ("RS256", lambda: private_pem(rsa.generate_private_key(65537, 1024)), "1024 bits"),  # noqa: S505
        ("RS256", lambda: private_pem(new_key("RS256"), b"passphrase"), "encrypted"),
    ],
    ids=["missing", "garbage", "ec-for-rs256", "rsa-for-es256", "rsa-1024", "encrypted"],
)
def test_a_bad_private_key_file_is_refused_in_one_line(
    settings: Configure,
    tmp_path: Path,
    algorithm: str,
    content: Callable[[], bytes | None],
    problem: str,
) -> None:
    path = tmp_path / "key.pem"
    if (data := content()) is not None:
        path.write_bytes(data)
    use_key(settings, algorithm, path)
    with pytest.raises(SettingsError) as refused:
        key_set()
    message = str(refused.value)
    assert message.startswith(f"Invalid setting JWT_PRIVATE_KEY_FILE: {path}: ")
    assert problem in message
    assert "\n" not in message


def test_an_extra_key_of_the_wrong_type_is_refused(settings: Configure, tmp_path: Path) -> None:
    extra = tmp_path / "ec.pub.pem"
    extra.write_bytes(public_pem(new_key("ES256")))
    use_key(settings, "RS256", write_private(tmp_path / "key.pem", new_key("RS256")), [extra])
    with pytest.raises(SettingsError, match=r"^Invalid setting JWT_EXTRA_PUBLIC_KEY_FILES: "):
        key_set()


def service_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db", **values}
    env.pop("TEST_DATABASE_URL", None)
    return env


def test_the_service_does_not_start_with_a_bad_key_file(tmp_path: Path) -> None:
    env = service_env(tmp_path, ALGORITHM="ES256", JWT_PRIVATE_KEY_FILE=str(tmp_path / "nope.pem"))
    started = subprocess.run(
        [sys.executable, "-c", "import app.main"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 1
    assert started.stderr.strip().splitlines() == [
        f"Invalid setting JWT_PRIVATE_KEY_FILE: {tmp_path / 'nope.pem'}: No such file or directory"
    ]


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_generate_key_writes_a_private_key_the_service_signs_with(
    client: TestClient, user: User, settings: Configure, tmp_path: Path, algorithm: str
) -> None:
    out = tmp_path / "jwt.pem"
    command = [str(MANAGE), "generate-key", "--algorithm", algorithm, "--out", str(out)]
    done = subprocess.run(
        command, env=service_env(tmp_path), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"ALGORITHM={algorithm}", f"JWT_PRIVATE_KEY_FILE={out}"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(out.read_bytes(), password=None)
    assert isinstance(
        key, rsa.RSAPrivateKey if algorithm == "RS256" else ec.EllipticCurvePrivateKey
    )
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    kid = key_id(key.public_key())
    assert kid in done.stderr

    use_key(settings, algorithm, out)
    token = login(client, user.email)["access_token"]
    assert pyjwt.get_unverified_header(token)["kid"] == kid
    assert me(client, token) == 200

    again = subprocess.run(
        command, env=service_env(tmp_path), capture_output=True, text=True, timeout=60, check=False
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert serialization.load_pem_private_key(out.read_bytes(), password=None).public_key() == (
        key.public_key()
    )


def test_generate_key_for_oidc_prints_the_oidc_setting(tmp_path: Path) -> None:
    """A key made for the OpenID Connect provider names OIDC_SIGNING_KEY_FILE, not the JWT
    settings (a newcomer following the Docker steps set the wrong one)."""
    out = tmp_path / "keys" / "oidc.pem"
    command = [str(MANAGE), "generate-key", "--for", "oidc", "--out", str(out)]
    done = subprocess.run(
        command, env=service_env(tmp_path), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"OIDC_SIGNING_KEY_FILE={out}"]
    key = serialization.load_pem_private_key(out.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)  # RS256 by default, as OIDC Discovery wants
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
