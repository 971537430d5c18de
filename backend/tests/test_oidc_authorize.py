"""The authorization endpoint and the hosted pages: every rule of OIDC.md's "Authorization
code with PKCE and the hosted login page", driven like a browser (httpx with its own cookie
jar) and by Authlib's client."""

from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.core.config import Settings
from app.db import get_engine
from app.models.audit import AuditEvent
from app.models.session import AuthSession, SessionKind
from app.models.user import User
from tests.test_mfa import code_at, enable_totp
from tests.test_oidc_flow import validate_id_token
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.oidc import (
    AUTHORIZE,
    ISSUER,
    REDIRECT_URI,
    TOKEN,
    browser,
    form_fields,
    is_login_page,
    make_client,
    oauth_client,
    redirect_params,
    sign_in,
    start,
    submit,
    submit_login,
)

pytestmark = pytest.mark.usefixtures("oidc_issuer")


def authorize_url(client_id: str, **overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": "xyz",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        **overrides,
    }
    return AUTHORIZE + "?" + urlencode({k: v for k, v in params.items() if v is not None})


def events(name: str) -> list[AuditEvent]:
    with Session(get_engine()) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.event == name)).all())


# --- requests that must not redirect ------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example.com/callback",
        REDIRECT_URI + "/",
        REDIRECT_URI + "?x=1",
        REDIRECT_URI.upper(),
        "https://app.example.com/callback/../callback",
        "https://app.example.com:443/callback",
        None,
    ],
)
def test_a_redirect_uri_not_registered_exactly_is_a_400_page_without_redirect(
    client: TestClient, db: Session, redirect_uri: str | None
) -> None:
    registered = make_client(db)
    response = browser(client).get(authorize_url(registered.client_id, redirect_uri=redirect_uri))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "redirect URI" in response.text or "redirect_uri" in response.text


def test_an_unknown_client_is_a_400_page_without_redirect(client: TestClient) -> None:
    response = browser(client).get(authorize_url("no-such-client"))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "Unknown client" in response.text


# --- requests that redirect with an error -------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"scope": None}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
    ],
)
def test_bad_requests_redirect_with_error_state_and_iss(
    client: TestClient, db: Session, overrides: dict[str, str | None], error: str
) -> None:
    registered = make_client(db)
    response = browser(client).get(authorize_url(registered.client_id, **overrides))
    params = redirect_params(response)
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    assert params["error"] == error
    assert params["error_description"]
    assert params["state"] == "xyz"
    assert params["iss"] == ISSUER
    assert "code" not in params


def test_pkce_is_required_of_confidential_clients_too(client: TestClient, db: Session) -> None:
    registered = make_client(db, first_party=True)
    response = browser(client).get(
        authorize_url(registered.client_id, code_challenge=None, code_challenge_method=None)
    )
    assert redirect_params(response)["error"] == "invalid_request"


def test_a_scope_the_client_is_not_registered_for_is_invalid_scope(
    client: TestClient, db: Session
) -> None:
    registered = make_client(db, scopes=["openid", "email"])
    response = browser(client).get(authorize_url(registered.client_id, scope="openid roles"))
    assert redirect_params(response)["error"] == "invalid_scope"


# --- the login page -----------------------------------------------------------------------


def test_login_page_is_self_contained_with_a_strict_csp_and_csrf(
    client: TestClient, db: Session
) -> None:
    registered = make_client(db)
    page = browser(client).get(authorize_url(registered.client_id, login_hint="ada@example.com"))
    assert is_login_page(page)
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert "form-action" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert 'name="email"' in page.text and 'name="password"' in page.text
    assert 'value="ada@example.com"' in page.text  # login_hint
    assert form_fields(page.text)["csrf_token"]
    assert "http://" not in page.text.replace(ISSUER, "") and "https://" not in page.text.replace(
        ISSUER, ""
    ).replace(REDIRECT_URI, "")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-authsvc_csrf=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    assert client.get("/oauth/static/style.css").status_code == 200


def test_the_browser_session_cookie_is_host_prefixed_httponly_lax_and_secure(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=True)
    answer = sign_in(browser(client), authorize_url(registered.client_id), user.email, PASSWORD)
    assert "code" in redirect_params(answer)
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("__Host-authsvc_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    assert "Path=/" in cookie and "Domain" not in cookie


def test_a_login_form_without_the_browsers_csrf_token_is_refused(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=True)
    victim, attacker = browser(client), browser(client)
    page = attacker.get(authorize_url(registered.client_id))
    fields = {**form_fields(page.text), "email": user.email, "password": PASSWORD}

    victim.get(authorize_url(registered.client_id))  # the victim has a CSRF cookie of its own
    forged = victim.post("/oauth/authorize/login", data=fields)  # the attacker's token
    assert forged.status_code == 403
    assert (
        "set-cookie" not in forged.headers or "authsvc_session" not in forged.headers["set-cookie"]
    )
    missing = victim.post("/oauth/authorize/login", data={**fields, "csrf_token": ""})
    assert missing.status_code == 403
    no_cookie = browser(client).post("/oauth/authorize/login", data=fields)
    assert no_cookie.status_code == 403
    assert events("auth.login_succeeded") == []


def test_a_wrong_password_or_unknown_email_reshows_the_form_with_one_generic_message(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=True)
    b = browser(client)
    wrong = sign_in(b, authorize_url(registered.client_id), user.email, "wrong-password")
    unknown = sign_in(b, authorize_url(registered.client_id), "nobody@example.com", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 400 and is_login_page(response)
        assert "Incorrect email or password" in response.text
        assert "location" not in response.headers
    assert len(events("auth.login_failed")) == 2


def test_the_hosted_login_shares_the_login_rate_limit_and_lockout(
    client: TestClient, db: Session, user: User, settings: Callable[..., Settings]
) -> None:
    settings(RATE_LIMIT_ENABLED=False, MAX_FAILED_LOGINS=3)
    registered = make_client(db, first_party=True)
    b = browser(client)
    for _ in range(2):  # two failures through the API, one through the page: locked
        bad = client.post(api("/auth/login"), data={"username": user.email, "password": "nope"})
        assert bad.status_code == 401
    assert sign_in(b, authorize_url(registered.client_id), user.email, "nope").status_code == 400
    locked = sign_in(b, authorize_url(registered.client_id), user.email, PASSWORD)
    assert locked.status_code == 429 and is_login_page(locked)
    assert int(locked.headers["retry-after"]) > 0
    assert len(events("auth.locked_out")) == 1


def test_the_hosted_login_counts_toward_the_per_address_rate_limit(
    client: TestClient, db: Session, user: User, settings: Callable[..., Settings]
) -> None:
    settings(RATE_LIMIT_LOGIN="2/minute", MAX_FAILED_LOGINS=100)
    registered = make_client(db, first_party=True)
    b = browser(client)
    for _ in range(2):
        assert sign_in(b, authorize_url(registered.client_id), user.email, "x").status_code == 400
    limited = sign_in(b, authorize_url(registered.client_id), user.email, PASSWORD)
    assert limited.status_code == 429
    assert "code" not in limited.headers.get("location", "")


def test_unverified_users_cannot_sign_in_when_verification_is_required(
    client: TestClient, db: Session, user: User, settings: Callable[..., Settings]
) -> None:
    settings(REQUIRE_EMAIL_VERIFICATION=True)
    registered = make_client(db, first_party=True)
    answer = sign_in(browser(client), authorize_url(registered.client_id), user.email, PASSWORD)
    assert answer.status_code == 400 and "Email not verified" in answer.text


def test_a_totp_user_gives_a_code_on_a_second_page(
    client: TestClient, db: Session, user: User, user_headers: dict[str, str]
) -> None:
    secret, _recovery = enable_totp(client, user_headers)
    registered = make_client(db, first_party=True)
    oauth = oauth_client(client, registered, scope="openid")
    started = start(oauth)
    b = browser(client)
    second = sign_in(b, started.url, user.email, PASSWORD)
    assert second.status_code == 200 and 'name="code"' in second.text
    assert 'name="password"' not in second.text
    assert "authsvc_session" not in second.headers.get("set-cookie", "")  # not signed in yet
    wrong = submit(b, second, "/oauth/authorize/mfa", code="000000")
    assert wrong.status_code == 400 and 'name="code"' in wrong.text
    answer = submit(b, wrong, "/oauth/authorize/mfa", code=code_at(secret, 1))
    params = redirect_params(answer)
    token = oauth.fetch_token(
        TOKEN, authorization_response=answer.headers["location"], code_verifier=started.verifier
    )
    claims = validate_id_token(client, token["id_token"], audience=registered.client_id)
    assert claims["amr"] == ["pwd", "otp"]
    assert params["state"] == started.state
    # The API login of user_headers, then the hosted one with its second step (any order).
    assert sorted(str(e.detail.get("mfa")) for e in events("auth.login_succeeded")) == [
        "None",
        "totp",
    ]


# --- single sign-on, prompt, max_age ------------------------------------------------------


def test_a_second_client_gets_its_code_without_a_login_form(
    client: TestClient, db: Session, user: User
) -> None:
    first = make_client(db, first_party=True)
    second = make_client(db, first_party=True, name="Second App")
    b = browser(client)
    assert "code" in redirect_params(
        sign_in(b, authorize_url(first.client_id), user.email, PASSWORD)
    )

    oauth = oauth_client(client, second, scope="openid email account")
    started = start(oauth)
    answer = b.get(started.url)
    assert answer.status_code == 302
    token = oauth.fetch_token(
        TOKEN, authorization_response=answer.headers["location"], code_verifier=started.verifier
    )
    assert client.get(api("/users/me"), headers=auth_header(token["access_token"])).is_success
    with Session(get_engine()) as session:
        kinds = sorted(row.kind for row in session.exec(select(AuthSession)).all())
    assert kinds == [SessionKind.BROWSER, SessionKind.OAUTH]


def test_prompt_none_without_a_session_is_login_required(client: TestClient, db: Session) -> None:
    registered = make_client(db, first_party=True)
    response = browser(client).get(authorize_url(registered.client_id, prompt="none"))
    params = redirect_params(response)
    assert params["error"] == "login_required" and params["state"] == "xyz"


def test_prompt_none_for_a_third_party_client_not_yet_allowed_is_consent_required(
    client: TestClient, db: Session, user: User
) -> None:
    own = make_client(db, first_party=True)
    third = make_client(db, name="Third Party")
    b = browser(client)
    sign_in(b, authorize_url(own.client_id), user.email, PASSWORD)
    response = b.get(authorize_url(third.client_id, prompt="none"))
    assert redirect_params(response)["error"] == "consent_required"


def test_prompt_none_with_a_session_gets_a_code(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=True)
    b = browser(client)
    sign_in(b, authorize_url(registered.client_id), user.email, PASSWORD)
    assert "code" in redirect_params(b.get(authorize_url(registered.client_id, prompt="none")))


def test_prompt_login_and_an_old_login_under_max_age_force_a_fresh_login(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=True)
    b = browser(client)
    sign_in(b, authorize_url(registered.client_id), user.email, PASSWORD)
    assert "code" in redirect_params(b.get(authorize_url(registered.client_id, max_age="3600")))

    forced = b.get(authorize_url(registered.client_id, prompt="login"))
    assert is_login_page(forced)
    again = submit_login(b, forced, user.email, PASSWORD)
    assert "code" in redirect_params(again)  # the fresh login satisfies prompt=login

    with Session(get_engine()) as session:  # the login is now 2 hours old
        for row in session.exec(select(AuthSession)).all():
            row.auth_time = row.auth_time and row.auth_time.replace(year=row.auth_time.year - 1)
            session.add(row)
        session.commit()
    assert is_login_page(b.get(authorize_url(registered.client_id, max_age="3600")))
    assert (
        redirect_params(b.get(authorize_url(registered.client_id, max_age="3600", prompt="none")))[
            "error"
        ]
        == "login_required"
    )


@pytest.mark.parametrize("ending", ["logout-all", "password-change", "deactivation", "deletion"])
def test_rules_that_end_sessions_end_the_browser_session(
    client: TestClient,
    db: Session,
    user: User,
    admin_headers: dict[str, str],
    ending: str,
) -> None:
    registered = make_client(db, first_party=True)
    b = browser(client)
    sign_in(b, authorize_url(registered.client_id), user.email, PASSWORD)
    assert b.get(authorize_url(registered.client_id)).status_code == 302  # SSO works

    headers = auth_header(login(client, user.email))
    if ending == "logout-all":
        assert client.post(api("/auth/logout-all"), headers=headers).status_code == 204
    elif ending == "password-change":
        body = {"current_password": PASSWORD, "new_password": "a-brand-new-password"}
        assert client.post(api("/users/me/password"), json=body, headers=headers).status_code == 204
    elif ending == "deactivation":
        patch = client.patch(
            api(f"/users/{user.id}"), json={"is_active": False}, headers=admin_headers
        )
        assert patch.status_code == 200
    else:
        assert client.delete(api(f"/users/{user.id}"), headers=admin_headers).status_code == 204

    assert is_login_page(b.get(authorize_url(registered.client_id)))
    assert (
        redirect_params(b.get(authorize_url(registered.client_id, prompt="none")))["error"]
        == "login_required"
    )


# --- consent ------------------------------------------------------------------------------


def test_a_third_party_client_asks_for_consent_and_deny_is_access_denied(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, name="Third Party")
    b = browser(client)
    page = sign_in(
        b, authorize_url(registered.client_id, scope="openid email"), user.email, PASSWORD
    )
    assert page.status_code == 200
    assert '<button type="submit" name="action" value="allow">' in page.text
    assert 'name="action" value="deny"' in page.text
    assert "Third Party" in page.text and "See your email address" in page.text
    assert f"Signed in as {user.email}" in page.text
    assert "set-cookie" in page.headers  # the login itself succeeded

    denied = submit(b, page, "/oauth/authorize/consent", action="deny")
    params = redirect_params(denied)
    assert (
        params["error"] == "access_denied" and params["state"] == "xyz" and params["iss"] == ISSUER
    )
    assert events("oauth.consent_granted") == []


def test_consent_is_remembered_per_user_and_client(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, name="Third Party")
    b = browser(client)
    page = sign_in(
        b, authorize_url(registered.client_id, scope="openid email"), user.email, PASSWORD
    )
    allowed = submit(b, page, "/oauth/authorize/consent", action="allow")
    assert "code" in redirect_params(allowed)
    assert len(events("oauth.consent_granted")) == 1

    again = b.get(authorize_url(registered.client_id, scope="openid email"))
    assert "code" in redirect_params(again)  # no consent page the second time
    assert (
        b.get(
            authorize_url(registered.client_id, scope="openid email", prompt="consent")
        ).status_code
        == 200
    )
    assert b.get(authorize_url(registered.client_id, scope="openid profile")).status_code == 200


def test_a_consent_form_without_the_browsers_csrf_token_is_refused(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, name="Third Party")
    b = browser(client)
    page = sign_in(b, authorize_url(registered.client_id), user.email, PASSWORD)
    fields = {**form_fields(page.text), "csrf_token": "forged", "action": "allow"}
    assert b.post("/oauth/authorize/consent", data=fields).status_code == 403
    assert events("oauth.consent_granted") == []


def test_a_third_party_client_gets_offline_access_only_through_the_consent_page(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, name="Third Party")
    oauth = oauth_client(client, registered, scope="openid email")
    b = browser(client)
    started = start(oauth)
    page = sign_in(b, started.url, user.email, PASSWORD)
    answer = submit(b, page, "/oauth/authorize/consent", action="allow")
    token = oauth.fetch_token(
        TOKEN, authorization_response=answer.headers["location"], code_verifier=started.verifier
    )
    assert "refresh_token" not in token

    # Asking for offline_access now shows the consent page again, even with prompt omitted.
    offline = start(oauth, scope="openid email offline_access")
    page = b.get(offline.url)
    assert page.status_code == 200 and "Keep access while you are away" in page.text
    assert (
        redirect_params(b.get(offline.url.replace("scope=", "prompt=none&scope=")))["error"]
        == "consent_required"
    )
    answer = submit(b, page, "/oauth/authorize/consent", action="allow")
    token = oauth.fetch_token(
        TOKEN, authorization_response=answer.headers["location"], code_verifier=offline.verifier
    )
    assert token["refresh_token"]


def test_a_first_party_client_never_asks_for_consent_offline_access_included(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=True)
    oauth = oauth_client(client, registered, scope="openid offline_access")
    started = start(oauth, prompt="consent")
    answer = sign_in(browser(client), started.url, user.email, PASSWORD)
    token = oauth.fetch_token(
        TOKEN, authorization_response=answer.headers["location"], code_verifier=started.verifier
    )
    assert token["refresh_token"]
    assert events("oauth.consent_granted") == []


# --- hostile input ------------------------------------------------------------------------


def test_hostile_authorization_requests_get_clear_answers_never_a_500(
    client: TestClient, db: Session
) -> None:
    registered = make_client(db)
    b = browser(client)
    many = authorize_url(registered.client_id) + "".join(f"&x{i}=1" for i in range(80))
    assert b.get(many).status_code == 400
    twice = authorize_url(registered.client_id) + f"&client_id={registered.client_id}"
    assert b.get(twice).status_code == 400 and "location" not in b.get(twice).headers
    for overrides in ({"nonce": "a\x00b"}, {"state": "s" * 5000}, {"nonce": "n" * 300}):
        params = redirect_params(b.get(authorize_url(registered.client_id, **overrides)))
        assert params["error"] == "invalid_request"
    repeated_scope = authorize_url(registered.client_id) + "&scope=email"
    assert redirect_params(b.get(repeated_scope))["error"] == "invalid_request"
    assert (
        redirect_params(b.get(authorize_url(registered.client_id, request="eyJ")))["error"]
        == "request_not_supported"  # OIDC Core §6
    )


def test_hostile_form_posts_get_clear_answers_never_a_500(
    client: TestClient, db: Session, user: User
) -> None:
    registered = make_client(db, first_party=True)
    b = browser(client)
    page = b.get(authorize_url(registered.client_id))
    fields = form_fields(page.text)
    for extra in (
        {"request": "client_id=nobody"},
        {"request": ""},
        {"email": "x" * 10_000, "password": "p" * 10_000},
        {"email": user.email, "password": "\x00"},
    ):
        answer = b.post("/oauth/authorize/login", data={**fields, **extra})
        assert answer.status_code in (400, 403), answer.text
    assert (
        b.post(
            "/oauth/authorize/login",
            content=b"\xff\xfe",
            headers={"content-type": "application/x-www-form-urlencoded"},
        ).status_code
        == 403
    )
    assert (
        b.post(
            "/oauth/authorize/mfa", data={**fields, "mfa_token": "nope", "code": "1"}
        ).status_code
        == 400
    )
    assert b.post("/oauth/authorize/consent", data={**fields, "action": "maybe"}).status_code in (
        200,
        400,
    )


def test_a_recovery_code_works_on_the_second_page_once(
    client: TestClient, db: Session, user: User, user_headers: dict[str, str]
) -> None:
    _secret, recovery = enable_totp(client, user_headers)
    registered = make_client(db, first_party=True)
    b = browser(client)
    second = sign_in(b, authorize_url(registered.client_id), user.email, PASSWORD)
    assert "code" in redirect_params(submit(b, second, "/oauth/authorize/mfa", code=recovery[0]))
    other = browser(client)
    again = sign_in(other, authorize_url(registered.client_id), user.email, PASSWORD)
    refused = submit(other, again, "/oauth/authorize/mfa", code=recovery[0])
    assert refused.status_code == 400 and 'name="code"' in refused.text


def test_signing_in_as_someone_else_ends_the_browsers_previous_session(
    client: TestClient, db: Session, user: User, user_factory: Callable[..., User]
) -> None:
    other = user_factory(email="other@example.com")
    registered = make_client(db, first_party=True)
    b = browser(client)
    sign_in(b, authorize_url(registered.client_id), user.email, PASSWORD)
    forced = b.get(authorize_url(registered.client_id, prompt="login"))
    assert "code" in redirect_params(submit_login(b, forced, other.email, PASSWORD))
    with Session(get_engine()) as session:
        rows = session.exec(
            select(AuthSession).where(AuthSession.kind == SessionKind.BROWSER)
        ).all()
    live = {row.user_id for row in rows if row.revoked_at is None}
    assert live == {other.id}


def test_the_authorization_request_may_be_posted_as_a_form(
    client: TestClient, db: Session, user: User
) -> None:
    from urllib.parse import parse_qsl, urlsplit

    registered = make_client(db, first_party=True)
    b = browser(client)
    params = dict(parse_qsl(urlsplit(authorize_url(registered.client_id)).query))
    page = b.post("/oauth/authorize", data=params)
    assert is_login_page(page)
    assert "code" in redirect_params(submit_login(b, page, user.email, PASSWORD))
    assert "code" in redirect_params(b.post("/oauth/authorize", data=params))
    form_post = b.get(authorize_url(registered.client_id, response_mode="form_post"))
    assert redirect_params(form_post)["error"] == "invalid_request"
