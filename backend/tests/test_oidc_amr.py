"""The ID token's `amr` states exactly the factors of the hosted sign-in that made it
(OIDC.md revision 2): a password, a password and TOTP, a passkey with user verification,
a passkey without it followed by TOTP."""

import json
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.models.user import User
from tests.test_mfa import code_at, enable_totp
from tests.test_oidc_flow import validate_id_token
from tests.utils import PASSWORD, api
from tests.utils.oidc import (
    ISSUER,
    browser,
    exchange,
    make_client,
    oauth_client,
    redirect_params,
    start,
    submit,
    submit_login,
)
from tests.utils.webauthn import SoftAuthenticator


@pytest.fixture(autouse=True)
def issuer(settings: Callable[..., Settings]) -> None:
    settings(PUBLIC_URL=ISSUER, RATE_LIMIT_ENABLED=False)


def passkey_of(client: TestClient, headers: dict[str, str]) -> SoftAuthenticator:
    """A passkey registered for the user of `headers`, for this service's origin."""
    device = SoftAuthenticator(origin=ISSUER, rp_id="testserver")
    options = client.post(
        api("/users/me/passkeys/registration/options"), headers=headers, json={"password": PASSWORD}
    )
    assert options.status_code == 200, options.text
    registered = client.post(
        api("/users/me/passkeys/registration"),
        headers=headers,
        json={"credential": device.create(options.json())},
    )
    assert registered.status_code == 201, registered.text
    return device


def passkey_step(
    b: httpx.Client, page: httpx.Response, device: SoftAuthenticator
) -> httpx.Response:
    """What "Sign in with a passkey" posts from the login page (web/static/passkey.js)."""
    started = b.post(api("/auth/passkey/options"), json={})
    assert started.status_code == 200, started.text
    flow = started.json()
    credential = json.dumps(device.get(flow["options"]))
    return submit(
        b, page, "/oauth/authorize/passkey", flow_id=flow["flow_id"], credential=credential
    )


@pytest.mark.parametrize(
    ("first", "totp", "expected"),
    [
        ("password", False, ["pwd"]),
        ("password", True, ["pwd", "otp"]),
        ("passkey with UV", False, ["hwk", "user"]),
        ("passkey with UV", True, ["hwk", "user"]),  # both factors: no TOTP step
        ("passkey without UV", True, ["hwk", "otp"]),
        ("passkey without UV", False, ["hwk"]),
    ],
)
def test_the_id_token_amr_states_the_factors_of_the_hosted_sign_in(
    client: TestClient,
    db: Session,
    user: User,
    user_headers: dict[str, str],
    first: str,
    totp: bool,
    expected: list[str],
) -> None:
    device = passkey_of(client, user_headers)
    device.user_verification = first == "passkey with UV"
    secret = enable_totp(client, user_headers)[0] if totp else None
    registered = make_client(db, first_party=True)
    started = start(oauth_client(client, registered, scope="openid"))
    b = browser(client)
    page = b.get(started.url)
    if first == "password":
        answer = submit_login(b, page, user.email, PASSWORD)
    else:
        answer = passkey_step(b, page, device)
    if secret is not None and first != "passkey with UV":  # one factor so far: TOTP next
        assert answer.status_code == 200 and 'name="code"' in answer.text, answer.text
        answer = submit(b, answer, "/oauth/authorize/mfa", code=code_at(secret, 1))
    code = redirect_params(answer)["code"]
    tokens = exchange(client, registered, code, started.verifier)
    assert tokens.status_code == 200, tokens.text
    claims = validate_id_token(client, tokens.json()["id_token"], audience=registered.client_id)
    assert claims["amr"] == expected
