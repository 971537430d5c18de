"""The authorization endpoint's rules: validate a request, decide whether it needs a login,
an account choice or a consent, and issue a code (60 s, single-use, bound to client,
redirect URI, PKCE challenge and nonce)."""

import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from urllib.parse import urlencode

from sqlmodel import Session

from app.core.i18n import N_
from app.core.security import TokenKind, decode, token_digest
from app.crud import audit, clients, organizations
from app.crud.audit import Actor
from app.errors import InvalidToken
from app.models.client import (
    CLIENT_SCOPES,
    AuthorizationCode,
    GrantType,
    OAuthClient,
    OrganizationUsage,
)
from app.models.common import utcnow
from app.models.organization import Organization
from app.oauth import pkce, resources
from app.oauth.discovery import issuer
from app.oauth.errors import (
    AccessDenied,
    AccountSelectionRequired,
    BadAuthorizationRequest,
    ConsentRequired,
    InteractionRequired,
    InvalidRequest,
    InvalidScope,
    LoginRequired,
    OAuthError,
    RedirectedError,
    RegistrationNotSupported,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from app.oauth.resources import Target

CODE_LIFETIME = timedelta(seconds=60)
CODE_KEPT_FOR = timedelta(days=1)  # after expiry: a replay still finds (and revokes) it
CODE_BYTES = 32
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
MAX_LENGTHS = {"state": 2048, "nonce": 255, "login_hint": 320, "scope": 255, "max_age": 10,
               "acr_values": 255, "resource": 2048, "organization": 64,
               "ui_locales": 255}  # fmt: skip
SINGLE = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
          "code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint",
          "response_mode", "id_token_hint", "acr_values", "resource",
          "organization", "ui_locales")  # fmt: skip


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client: OAuthClient
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str | None  # None: a client registered without require_pkce sent none
    prompt: frozenset[str]
    max_age: int | None
    login_hint: str | None
    hint_subject: str | None  # the `sub` of a valid id_token_hint
    acr_values: str | None
    resource: Target | None = None  # RFC 8707
    organization: str | None = None  # an id or a slug; None also when the client uses none
    ui_locales: str | None = None  # the pages' language, first (web/i18n.py)

    def permissions(self) -> tuple[str, ...]:
        """The permission names of `resource` asked for (beside the registered scopes)."""
        if self.resource is None:
            return ()
        return tuple(name for name in self.scope if name not in CLIENT_SCOPES)

    def consent_keys(self) -> set[str]:
        """What a consent to this request is remembered as: the registered scopes by name,
        a resource's permissions as "identifier name" (names repeat across resources)."""
        asked = set(self.permissions())
        return {
            f"{self.resource.identifier} {name}" if name in asked and self.resource else name
            for name in self.scope
        }

    def error(self, error: OAuthError) -> RedirectedError:
        return RedirectedError(error, redirect_uri=self.redirect_uri, state=self.state)


@dataclass(frozen=True, slots=True)
class Login:
    """The browser's live login (its session row), as the hosted pages found it."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    auth_time: datetime
    amr: tuple[str, ...]


class Next(Enum):
    LOGIN = "login"
    SELECT_ACCOUNT = "select_account"
    ORGANIZATION = "organization"  # the client requires one and the request named none
    CONSENT = "consent"
    ISSUE = "issue"


def parse_request(session: Session, params: Mapping[str, Sequence[str]]) -> AuthorizationRequest:
    """Validate an authorization request (`params`: every value of every name). An unknown
    client or unregistered redirect URI raises BadAuthorizationRequest (never redirect);
    any other problem RedirectedError."""
    for name in ("client_id", "redirect_uri"):
        if len(params.get(name, ())) != 1:
            raise BadAuthorizationRequest(N_("The request needs exactly one %(name)s.", name=name))
    client = clients.get_client(session, params["client_id"][0])
    if client is None:
        raise BadAuthorizationRequest(N_("Unknown client."))
    redirect_uri = params["redirect_uri"][0]
    if redirect_uri not in client.redirect_uris:  # exact string comparison, RFC 9700 §4.1.3
        raise BadAuthorizationRequest(N_("This redirect URI is not registered for the client."))
    state_values = params.get("state", ())
    state = state_values[0] if len(state_values) == 1 else None

    def fail(error: OAuthError) -> RedirectedError:
        return RedirectedError(error, redirect_uri=redirect_uri, state=state)

    for name in SINGLE:
        if len(params.get(name, ())) > 1:
            raise fail(InvalidRequest(f"{name} is given more than once"))
    one = {name: values[0] for name, values in params.items() if values}
    if any("\x00" in value for value in one.values()):
        raise fail(InvalidRequest("Parameters must not contain NUL characters"))
    for name, limit in MAX_LENGTHS.items():
        if len(one.get(name, "")) > limit:
            raise fail(InvalidRequest(f"{name} is too long"))
    if "request" in one:
        raise fail(RequestNotSupported("Request objects are not supported"))
    if "request_uri" in one:
        raise fail(RequestUriNotSupported("request_uri is not supported"))
    if "registration" in one:
        raise fail(RegistrationNotSupported("The registration parameter is not supported"))
    if one.get("response_mode", "query") != "query":
        raise fail(InvalidRequest("Only response_mode=query is supported"))
    response_type = one.get("response_type")
    if not response_type:
        raise fail(InvalidRequest("response_type is required"))
    if response_type != "code":
        raise fail(UnsupportedResponseType("Only response_type=code is supported"))
    if GrantType.AUTHORIZATION_CODE not in client.grant_types:
        raise fail(UnauthorizedClient("The client may not use the authorization code grant"))
    try:
        challenge = pkce.requested_challenge(one, required=client.public or client.require_pkce)
    except InvalidRequest as error:
        raise fail(error) from None
    scope = tuple(dict.fromkeys(one.get("scope", "").split()))
    if not scope:
        raise fail(InvalidScope("scope is required"))
    try:
        resource = resources.target(session, client, one.get("resource"))
        resources.check_scope(client, scope, resource)
    except OAuthError as error:
        raise fail(error) from None
    # Without PKCE (a confidential client that opted out), an OpenID request only: the client
    # authenticates at the token endpoint, and its nonce (when it sends one: the suite's
    # oidcc-ensure-request-without-nonce-succeeds-for-code-flow sends none) is its own
    # defence against code injection (RFC 9700 §2.1.1). A plain OAuth request keeps PKCE.
    if challenge is None and "openid" not in scope:
        raise fail(InvalidRequest("Without PKCE, the request needs scope openid"))
    prompt = frozenset(one.get("prompt", "").split())
    if not prompt <= PROMPTS:
        raise fail(InvalidRequest("prompt may hold none, login, consent and select_account"))
    # prompt=none with select_account is answered account_selection_required (next_step).
    if "none" in prompt and not prompt <= {"none", "select_account"}:
        raise fail(InvalidRequest("prompt=none cannot be combined"))
    hint_subject = None
    if "id_token_hint" in one:  # expired is fine: RPs send the one they got at sign-in
        try:
            hint_subject = decode(one["id_token_hint"], TokenKind.ID_TOKEN_HINT).sub
        except InvalidToken:
            raise fail(InvalidRequest("id_token_hint is not an ID token of this issuer")) from None
    max_age = None
    if "max_age" in one:
        if not one["max_age"].isdigit():
            raise fail(InvalidRequest("max_age must be a number of seconds"))
        max_age = int(one["max_age"])
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        nonce=one.get("nonce"),
        code_challenge=challenge,
        prompt=prompt,
        max_age=max_age,
        login_hint=one.get("login_hint"),
        hint_subject=hint_subject,
        acr_values=one.get("acr_values") or None,
        resource=resource,
        organization=(
            one.get("organization") if client.organization_usage != OrganizationUsage.NONE else None
        ),
        ui_locales=one.get("ui_locales") or None,
    )


def needs_login(request: AuthorizationRequest, login: Login | None, *, fresh: bool) -> bool:
    """No live login, or one that prompt=login or max_age says is too old."""
    if login is None:
        return True
    if fresh:
        return False
    if "login" in request.prompt:
        return True
    return request.max_age is not None and (
        utcnow() - login.auth_time > timedelta(seconds=request.max_age)
    )


def needs_consent(session: Session, request: AuthorizationRequest, login: Login) -> bool:
    """First-party clients never ask. A third-party client asks on prompt=consent or for any
    scope the user has not allowed it yet (offline_access included: OIDC Core §11)."""
    if request.client.first_party:
        return False
    if "consent" in request.prompt:
        return True
    allowed = clients.consented_scopes(
        session, user_id=login.user_id, client_id=request.client.client_id
    )
    return not request.consent_keys() <= allowed


def other_user_hinted(request: AuthorizationRequest, login: Login | None, *, fresh: bool) -> bool:
    """The id_token_hint names someone else than the user signed in (before this request:
    a login made on its own form is the user's answer)."""
    return (
        login is not None
        and not fresh
        and request.hint_subject is not None
        and request.hint_subject != str(login.user_id)
    )


def next_step(
    session: Session,
    request: AuthorizationRequest,
    login: Login | None,
    *,
    fresh: bool = False,
    selected: bool = False,
) -> Next:
    """What the browser sees next; prompt=none turns a page into an error redirect.
    `fresh`: the user has just signed in on the form; `selected`: the user has just chosen
    to continue with the signed-in account (prompt=select_account)."""
    if needs_login(request, login, fresh=fresh) or other_user_hinted(request, login, fresh=fresh):
        if "none" in request.prompt:
            raise request.error(LoginRequired("The user is not signed in"))
        return Next.LOGIN
    assert login is not None
    if "select_account" in request.prompt and not (fresh or selected):
        if "none" in request.prompt:
            raise request.error(AccountSelectionRequired("The user must choose an account"))
        return Next.SELECT_ACCOUNT
    if request.client.organization_usage != OrganizationUsage.NONE:
        if request.organization is None and request.client.organization_usage == (
            OrganizationUsage.REQUIRE
        ):
            if not organizations.of_user(session, login.user_id):
                raise request.error(AccessDenied("The user is a member of no organization"))
            if "none" in request.prompt:  # the picker is a page the user must act on
                raise request.error(InteractionRequired("The user must choose an organization"))
            return Next.ORGANIZATION
        selected_organization(session, request, login)
    if needs_consent(session, request, login):
        if "none" in request.prompt:
            raise request.error(ConsentRequired("The user has not allowed this client"))
        return Next.CONSENT
    return Next.ISSUE


def selected_organization(
    session: Session, request: AuthorizationRequest, login: Login
) -> Organization | None:
    """The organization the request selects, of which the user must be a member (else
    access_denied); None when it selects none."""
    if request.organization is None:
        return None
    organization = organizations.find(session, request.organization)
    if organization is None or not organizations.is_member(session, organization.id, login.user_id):
        raise request.error(AccessDenied("The user is not a member of that organization"))
    return organization


def grant_consent(
    session: Session, request: AuthorizationRequest, login: Login, *, actor: Actor
) -> None:
    clients.remember_consent(
        session,
        user_id=login.user_id,
        client_id=request.client.client_id,
        scopes=sorted(request.consent_keys()),
        actor=actor,
    )


def issue_code(
    session: Session, request: AuthorizationRequest, login: Login, *, actor: Actor
) -> str:
    """A new code for this request and login; returns the redirect URL that carries it."""
    organization = selected_organization(session, request, login)
    code = secrets.token_urlsafe(CODE_BYTES)
    now = utcnow()
    clients.delete_stale_codes(session, user_id=login.user_id, expired_before=now - CODE_KEPT_FOR)
    clients.add_code(
        session,
        AuthorizationCode(
            digest=token_digest(code),
            client_id=request.client.client_id,
            user_id=login.user_id,
            browser_session_id=login.session_id,
            redirect_uri=request.redirect_uri,
            scope=" ".join(request.scope),
            nonce=request.nonce,
            code_challenge=request.code_challenge,
            acr_values=request.acr_values,
            auth_time=login.auth_time,
            amr=" ".join(login.amr),
            resource=request.resource.identifier if request.resource else None,
            organization_id=organization.id if organization else None,
            created_at=now,
            expires_at=now + CODE_LIFETIME,
        ),
    )
    audit.record(
        session,
        "oauth.code_issued",
        actor=actor,
        subject_id=login.user_id,
        client_id=request.client.client_id,
        scope=" ".join(request.scope),
    )
    return redirect_with(request.redirect_uri, {"code": code, "state": request.state})


def redirect_with(redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """The registered URI with the response parameters and `iss` (RFC 9207) added to its
    query (keeping the query it has)."""
    values = {name: value for name, value in params.items() if value is not None}
    values["iss"] = issuer()
    separator = "&" if "?" in redirect_uri else "?"
    return redirect_uri + separator + urlencode(values)


def error_redirect(error: RedirectedError) -> str:
    return redirect_with(
        error.redirect_uri,
        {
            "error": error.error.error,
            "error_description": error.error.description,
            "state": error.state,
        },
    )
