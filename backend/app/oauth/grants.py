"""The token endpoint's grants: authorization_code, refresh_token and client_credentials."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.auth import tokens as session_tokens
from app.core.config import get_settings
from app.core.security import TokenKind, decode, new_jti, token_digest
from app.crud import audit, clients, organizations, sessions
from app.crud.audit import Actor
from app.db import Remembered
from app.errors import InvalidToken
from app.models.client import API_SCOPES, AuthorizationCode, GrantType, OAuthClient, Scope
from app.models.common import utcnow
from app.models.organization import Organization
from app.models.session import AuthSession, SessionKind
from app.models.user import User
from app.oauth import client_auth, pkce, resources
from app.oauth.errors import (
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from app.oauth.tokens import TokenResponse, acr_level, client_access_token, token_response

SUPPORTED = (GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN, GrantType.CLIENT_CREDENTIALS)
# Scopes of a user's sign-in: no meaning for a client acting for itself (no ID token,
# RFC 6749 §4.4.3: no refresh token, and the service's own API takes only a user's token),
# so asking for them is invalid_scope.
USER_ONLY_SCOPES = frozenset({Scope.OPENID, Scope.OFFLINE_ACCESS, *API_SCOPES})
MAX_PARAM_LENGTH = 4096


def single_values(form: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The form's parameters, each given at most once (RFC 6749 §3.2) and of bounded size."""
    for name, values in form.items():
        if len(values) > 1:
            raise InvalidRequest(f"{name[:64]} is given more than once")
        if len(values[0]) > MAX_PARAM_LENGTH:
            raise InvalidRequest(f"{name[:64]} is too long")
    return {name: values[0] for name, values in form.items() if values}


def authenticate_client(
    session: Session, one: Mapping[str, str], basic: tuple[str, str] | None
) -> OAuthClient:
    """The client of a token request (RFC 6749 §2.3), as a row of `session`."""
    return client_auth.authenticate(session, client_auth.Credentials.of(one, basic))


def token(
    session: Session,
    *,
    form: Mapping[str, Sequence[str]],
    basic: tuple[str, str] | None,
    actor: Actor,
) -> TokenResponse:
    """One token request, a step: authenticate the client, then run its grant (its reads
    and writes one transaction)."""
    one = single_values(form)
    grant_type = one.get("grant_type")
    if not grant_type:
        raise InvalidRequest("grant_type is required")
    if grant_type not in SUPPORTED:
        raise UnsupportedGrantType(f"grant_type {grant_type[:64]} is not supported")
    client = authenticate_client(session, one, basic)
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(f"The client may not use grant_type {grant_type}")
    try:
        answer = _grant(session, client, grant_type, one, actor)
        session.flush()  # a deleted client's rows fail here, not at the helper's commit
    except IntegrityError:  # the client was deleted between its authentication and now
        raise InvalidClient("Unknown client") from None
    return answer


def _grant(
    session: Session, client: OAuthClient, grant_type: str, one: dict[str, str], actor: Actor
) -> TokenResponse:
    resource = one.get("resource")
    if grant_type == GrantType.CLIENT_CREDENTIALS:
        return client_credentials(
            session, client=client, scope=one.get("scope"), resource=resource, actor=actor
        )
    if grant_type == GrantType.AUTHORIZATION_CODE:
        return exchange_code(
            session,
            client=client,
            code=one.get("code", ""),
            redirect_uri=one.get("redirect_uri", ""),
            code_verifier=one.get("code_verifier"),
            resource=resource,
            actor=actor,
        )
    return refresh(
        session,
        client=client,
        refresh_token=one.get("refresh_token", ""),
        scope=one.get("scope"),
        resource=resource,
        actor=actor,
    )


def _bound_target(
    session: Session, client: OAuthClient, asked: str | None, bound: str | None
) -> str | None:
    """The resource of a code exchange or a refresh: the one the grant is bound to; `asked`
    (RFC 8707 at the token endpoint) may only name it again, or name one for a grant bound
    to none."""
    if asked is None:
        return bound
    target = resources.target(session, client, asked)
    assert target is not None
    if bound is not None and target.identifier != bound:
        raise InvalidTarget("The grant is for another resource")
    return target.identifier


def exchange_code(
    session: Session,
    *,
    client: OAuthClient,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    actor: Actor,
    resource: str | None = None,
) -> TokenResponse:
    """Single use: the exchange completes only if its conditional UPDATE marks the code
    used; a second exchange fails and revokes what the first issued. The code_verifier
    must fit the code's PKCE challenge, and be absent for a code issued without one."""
    if not code or not redirect_uri:
        raise InvalidRequest("code and redirect_uri are required")
    pkce.check_verifier_format(code_verifier)
    digest = token_digest(code)
    row = clients.get_code(session, digest)
    now = utcnow()
    if row is None or row.client_id != client.client_id:
        raise InvalidGrant("The code is unknown, expired or was issued to another client")
    if row.used_at is not None:
        raise _replayed(row, actor)
    if (
        row.expires_at <= now
        or row.redirect_uri != redirect_uri
        or not pkce.verifier_matches(row.code_challenge, code_verifier)
    ):
        raise InvalidGrant("The code is expired, or redirect_uri or code_verifier is wrong")
    target = _bound_target(session, client, resource, row.resource)
    if not clients.claim_code(session, digest=digest, now=now):
        session.refresh(row)  # another exchange won: see what it issued
        raise _replayed(row, actor)
    user = session.get(User, row.user_id, populate_existing=True)
    approving = (
        session.get(AuthSession, row.browser_session_id, populate_existing=True)
        if row.browser_session_id
        else None
    )
    organization = session.get(Organization, row.organization_id) if row.organization_id else None
    if (
        user is None
        or not user.is_active
        or (approving is not None and approving.revoked_at is not None)
        or (
            row.organization_id is not None
            and (
                organization is None
                or not organizations.is_member(session, row.organization_id, user.id)
            )
        )
    ):
        raise Remembered(  # the code is spent all the same
            InvalidGrant("The sign-in behind this code has ended"),
            lambda session: clients.claim_code(session, digest=digest, now=now),
        )
    scope = row.scope.split()
    with_refresh = Scope.OFFLINE_ACCESS in scope and GrantType.REFRESH_TOKEN in client.grant_types
    refresh_jti = new_jti()
    settings = get_settings()
    lifetime = (
        timedelta(days=settings.REFRESH_TOKEN_EXPIRE_DAYS)
        if with_refresh
        else timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES)
    )
    oauth_session = sessions.open_session(
        session,
        user_id=user.id,
        refresh_jti=refresh_jti,
        expires_at=now + lifetime,
        ip=actor.ip,
        user_agent=actor.user_agent,
        kind=SessionKind.OAUTH,
        client_id=client.client_id,
        scope=row.scope,
        auth_time=row.auth_time,
        amr=row.amr,
        browser_session_id=row.browser_session_id,
        resource=target,
        organization_id=row.organization_id,
    )
    clients.bind_code_session(session, digest=digest, session_id=oauth_session.id)
    audit.record(
        session,
        "oauth.token_issued",
        actor=Actor(user_id=user.id, ip=actor.ip, user_agent=actor.user_agent),
        subject_id=user.id,
        client_id=client.client_id,
        grant="authorization_code",
        scope=row.scope,
        session_id=str(oauth_session.id),
    )
    answer = token_response(
        oauth_session,
        user,
        scope=scope,
        access_scope=_access_scope(session, oauth_session, scope),
        with_refresh=with_refresh,
        nonce=row.nonce,
        acr=acr_level(row.amr.split()) if row.acr_values is not None else None,
        id_token_alg=client.id_token_signed_response_alg,
        organization=organization,
        extra=resources.identity_claims(
            session, user_id=user.id, organization_id=row.organization_id, scope=scope
        ),
    )
    return answer


def _access_scope(session: Session, row: AuthSession, scope: list[str]) -> list[str]:
    """The access token's scope for the session's resource and organization, now."""
    return resources.user_scope(
        session,
        scope=scope,
        resource=row.resource,
        user_id=row.user_id,
        organization_id=row.organization_id,
    )


def _replayed(row: AuthorizationCode, actor: Actor) -> Remembered:
    """A used code presented again: refused, and the session its exchange opened ends
    (RFC 6749 §4.1.2), audited, whatever the refused transaction held."""
    session_id, user_id, client_id = row.session_id, row.user_id, row.client_id

    def reuse_detected(session: Session) -> None:
        revoked = sessions.revoke(session, session_id) if session_id else False
        audit.record(
            session,
            "oauth.code_reuse_detected",
            actor=actor,
            subject_id=user_id,
            client_id=client_id,
            revoked=revoked,
        )

    return Remembered(InvalidGrant("The code was already used"), reuse_detected)


def refresh(
    session: Session,
    *,
    client: OAuthClient,
    refresh_token: str,
    scope: str | None,
    actor: Actor,
    resource: str | None = None,
) -> TokenResponse:
    """Rotation, reuse detection and grace are /auth/refresh's (auth.tokens.refresh); the
    token must be one issued to this client, and the scope may only narrow."""
    if not refresh_token:
        raise InvalidRequest("refresh_token is required")
    try:
        claims = decode(refresh_token, TokenKind.REFRESH)
    except InvalidToken:
        raise InvalidGrant("The refresh token is invalid, expired or revoked") from None
    row = session.get(AuthSession, claims.sid, populate_existing=True)
    if row is None or row.kind is not SessionKind.OAUTH or row.client_id != client.client_id:
        raise InvalidGrant("The refresh token was not issued to this client")
    if row.revoked_at is not None or row.expires_at <= utcnow():
        raise InvalidGrant("The refresh token is invalid, expired or revoked")
    granted = (row.scope or "").split()
    requested = list(dict.fromkeys(scope.split())) if scope is not None else granted
    if not requested or not set(requested) <= set(granted):
        raise InvalidScope("The scope may only narrow what was granted")
    _bound_target(session, client, resource, row.resource)
    if resource is not None and row.resource is None:
        raise InvalidTarget("The grant is for the service's own API")

    def issue(renewed: AuthSession) -> TokenResponse:
        user = session.get(User, renewed.user_id)
        assert user is not None  # the session and its user were just read live
        organization = None
        if renewed.organization_id is not None:  # ended with its membership (crud/organizations)
            organization = session.get(Organization, renewed.organization_id)
            if organization is None:
                raise InvalidGrant("The organization of this sign-in is gone")
        return token_response(
            renewed,
            user,
            scope=requested,
            access_scope=_access_scope(session, renewed, requested),
            with_refresh=True,
            id_token_alg=client.id_token_signed_response_alg,
            organization=organization,
            extra=resources.identity_claims(
                session,
                user_id=renewed.user_id,
                organization_id=renewed.organization_id,
                scope=requested,
            ),
        )

    try:
        return session_tokens.refresh(
            session, refresh_token=refresh_token, actor=actor, kind=SessionKind.OAUTH, pair=issue
        )
    except InvalidToken:
        raise InvalidGrant("The refresh token is invalid, expired or revoked") from None
    except Remembered as reuse:  # the session revoked (its record step), answered as OAuth's
        refusal = InvalidGrant("The refresh token is invalid, expired or revoked")
        raise Remembered(refusal, reuse.record) from None


def client_credentials(
    session: Session,
    *,
    client: OAuthClient,
    scope: str | None,
    actor: Actor,
    resource: str | None = None,
) -> TokenResponse:
    """An access token for the client itself (RFC 6749 §4.4): the requested scopes, or
    without `scope` all it was registered with (but openid and offline_access); recorded
    by jti so that revocation, a secret rotation or deleting the client end it at once."""
    if client.public:  # registration refuses it; a public client has no credentials
        raise UnauthorizedClient("A public client cannot use client_credentials")
    target = resources.target(session, client, resource)
    asked = None if scope is None else list(dict.fromkeys(scope.split()))
    if asked is None:
        granted = [name for name in client.scopes if name not in USER_ONLY_SCOPES]
    else:
        granted = asked
        if set(granted) & USER_ONLY_SCOPES:
            raise InvalidScope("openid and offline_access are for a user's sign-in")
        if target is not None:
            resources.check_scope(client, granted, target)
        elif not set(granted) <= set(client.scopes):
            raise InvalidScope("The client is not registered for that scope")
    if target is not None:
        granted = resources.client_scope(session, client=client, scope=asked, resource=target)
    scope_text = " ".join(granted)
    assert client.secret_digest is not None  # confidential: authenticated by its secret
    if not clients.hold_secret(
        session, client_id=client.client_id, secret_digest=client.secret_digest
    ):
        raise InvalidClient()  # rotated or deleted since the authentication
    access, jti, exp, lifetime = client_access_token(
        client.client_id, scope_text, audience=target.identifier if target else None
    )
    clients.add_client_token(
        session,
        jti=jti,
        client_id=client.client_id,
        scope=scope_text,
        expires_at=datetime.fromtimestamp(exp, UTC),
    )
    audit.record(
        session,
        "oauth.token_issued",
        actor=actor,
        client_id=client.client_id,
        grant="client_credentials",
        scope=scope_text,
    )
    return TokenResponse(access_token=access, expires_in=lifetime, scope=scope_text)
