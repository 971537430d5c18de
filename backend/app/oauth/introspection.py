"""Which token was presented, and whether it is live (RFC 7662 introspection). Revocation
(oauth/revocation.py) finds tokens here too.

Any authenticated confidential client may introspect any token (RFC 7662 §4 leaves it to
policy): a resource server checks tokens of many clients, and the answer tells nothing the
token (a readable JWT) does not, except whether it is still live.

Resource servers introspect on every request they serve, so this runs like the service's
own per-request check (auth.tokens.authenticate): the signature verified on the event loop,
then one read of the client and the token's row together (reads.read_first), never cached, on
the event loop too; no ORM session, no worker thread, nothing written."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.auth.tokens import session_is_live
from app.core.keys import access_key
from app.core.security import (
    OAuthAccessClaims,
    TokenClaims,
    TokenKind,
    constant_time_equals,
    decode,
)
from app.crud import clients, sessions
from app.errors import InvalidToken
from app.models.common import utcnow
from app.models.session import SessionKind
from app.oauth.client_auth import Credentials, check, claimed_client_id
from app.oauth.discovery import issuer
from app.oauth.errors import InvalidClient, InvalidRequest
from app.oauth.grants import single_values

ACCESS_TOKEN = "Bearer"  # RFC 7662 token_type of an access token (its RFC 6749 type)
REFRESH_TOKEN = "refresh_token"
INACTIVE: dict[str, Any] = {"active": False}


@dataclass(frozen=True, slots=True)
class Presented:
    """A validly signed, unexpired OAuth token of this issuer whose row exists: the OAuth
    session of a user's access or refresh token (`session_id`, `user_id`), or the client
    token of a client's own one (`client_token_jti`); `live` as the row says now."""

    token_type: str
    client_id: str
    sub: str
    scope: str
    iat: int
    exp: int
    live: bool
    aud: str | None = None  # None: the issuer
    org_id: str | None = None
    session_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    client_token_jti: str | None = None


@dataclass(frozen=True, slots=True)
class Lookup:
    """The client a request authenticated as, and the token it presented (None: not one of
    this issuer's OAuth tokens, or no row behind it)."""

    client: clients.ClientAuthRow
    presented: Presented | None


async def lookup(credentials: Credentials, token: str | None) -> Lookup:
    """Authenticate the client and find the token, in one read of the database.

    The token's signature and claims are checked first (CPU only), to know which row to
    read with the client: its session, its client token, or none. The client's credentials
    are then checked on that read (client_auth.check, InvalidClient) before anything of the
    token is used, so that errors come in the order they always did."""
    client_id = claimed_client_id(credentials)
    claims = _verified(token) if token else None
    if isinstance(claims, OAuthAccessClaims) and claims.sid is None:
        found = await clients.read_client_and_token(client_id, client_token_jti=claims.jti)
    elif claims is not None:
        assert claims.sid is not None
        found = await clients.read_client_and_token(client_id, session_id=claims.sid)
    else:
        found = await clients.read_client_and_token(client_id)
    client = check(credentials, found.client)
    return Lookup(client=client, presented=None if claims is None else _presented(claims, found))


def _verified(token: str) -> OAuthAccessClaims | TokenClaims | None:
    """The checked claims of an OAuth access token or of a refresh token of this issuer
    (told apart by the header segment, without parsing it); None for anything else (the
    service's own access tokens, ID tokens, expired or forged ones)."""
    try:
        if access_key(token) is not None:
            return decode(token, TokenKind.RESOURCE_ACCESS)
        return decode(token, TokenKind.REFRESH)
    except InvalidToken:
        return None


def _presented(
    claims: OAuthAccessClaims | TokenClaims, found: clients.ClientAndToken
) -> Presented | None:
    """The token of `claims`, if its row is there and is that token's: an OAuth session of
    the token's user (and, for an access token, of its client), or the client token of the
    very client it names."""
    if isinstance(claims, TokenClaims):
        return _refresh(claims, found.session)
    if claims.sid is None:
        return _client_access(claims, found.client_token)
    state = found.session
    if (
        state is None
        or state.kind is not SessionKind.OAUTH
        or state.client_id != claims.client_id
        or str(state.user_id) != claims.sub
    ):
        return None
    return _access_presented(
        claims, live=_session_live(state), session_id=claims.sid, user_id=state.user_id
    )


def _session_live(state: sessions.SessionState) -> bool:
    return session_is_live(bool(state.user_active), state.revoked_at, state.expires_at)


def _refresh(claims: TokenClaims, state: sessions.SessionState | None) -> Presented | None:
    if state is None or state.kind is not SessionKind.OAUTH or state.client_id is None:
        return None
    if state.user_id != claims.sub:
        return None
    current = constant_time_equals(claims.jti, state.refresh_jti)  # not a spent one
    return Presented(
        token_type=REFRESH_TOKEN,
        client_id=state.client_id,
        sub=str(state.user_id),
        scope=state.scope or "",
        iat=int(state.issued_at.timestamp()),
        exp=int(claims.exp.timestamp()),
        live=current and _session_live(state),
        org_id=str(state.organization_id) if state.organization_id else None,
        session_id=claims.sid,
        user_id=state.user_id,
    )


def _client_access(
    claims: OAuthAccessClaims, row: clients.ClientTokenRow | None
) -> Presented | None:
    """A client's own token (client_credentials): its row by jti, of that very client."""
    if row is None or row.client_id != claims.client_id or claims.sub != claims.client_id:
        return None
    live = _client_token_live(row.revoked_at, row.expires_at)
    return _access_presented(claims, live=live, client_token_jti=claims.jti)


def _client_token_live(revoked_at: datetime | None, expires_at: datetime) -> bool:
    return revoked_at is None and expires_at > utcnow()


def _access_presented(claims: OAuthAccessClaims, *, live: bool, **row: Any) -> Presented:
    return Presented(
        token_type=ACCESS_TOKEN,
        client_id=claims.client_id,
        sub=claims.sub,
        scope=" ".join(sorted(claims.scope)),
        iat=claims.iat,
        exp=int(claims.exp.timestamp()),
        live=live,
        aud=claims.aud or None,
        org_id=claims.org_id,
        **row,
    )


def answer(presented: Presented | None) -> dict[str, Any]:
    """RFC 7662 §2.2: the token's claims if it is live, else only `active: false`."""
    if presented is None or not presented.live:
        return dict(INACTIVE)
    body: dict[str, Any] = {
        "active": True,
        "sub": presented.sub,
        "client_id": presented.client_id,
        "scope": presented.scope,
        "exp": presented.exp,
        "iat": presented.iat,
        "token_type": presented.token_type,
        "iss": issuer(),
        "aud": presented.aud or issuer(),
    }
    if presented.org_id is not None:
        body["org_id"] = presented.org_id
    if presented.session_id is not None:
        body["sid"] = str(presented.session_id)
    return body


async def introspection_request(
    *, form: Mapping[str, Sequence[str]], basic: tuple[str, str] | None
) -> dict[str, Any]:
    """RFC 7662 §2.1: a confidential client authenticates (401 invalid_client otherwise,
    public clients included), then asks about `token` (`token_type_hint` is optional, and
    not needed: the token's form tells)."""
    one = single_values(form)
    token = one.get("token")
    found = await lookup(Credentials.of(one, basic), token)
    if found.client.public:
        raise InvalidClient("Introspection needs a confidential client's credentials")
    if not token:
        raise InvalidRequest("token is required")
    return answer(found.presented)
