"""Which token was presented, and whether it is live (RFC 7662 introspection). Revocation
(oauth/revocation.py) finds tokens here too.

Any authenticated confidential client may introspect any token (RFC 7662 §4 leaves it to
policy): a resource server checks tokens of many clients, and the answer tells nothing the
token (a readable JWT) does not, except whether it is still live."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from app.core.security import (
    TokenType,
    constant_time_equals,
    decode_oauth_access_token,
    decode_token,
    oauth_access_header,
)
from app.crud import clients
from app.errors import InvalidToken
from app.models.client import ClientToken
from app.models.common import utcnow
from app.models.session import AuthSession, SessionKind
from app.models.user import User
from app.oauth.discovery import issuer
from app.oauth.errors import InvalidClient, InvalidRequest
from app.oauth.grants import authenticate_client, single_values

ACCESS_TOKEN = "Bearer"  # RFC 7662 token_type of an access token (its RFC 6749 type)
REFRESH_TOKEN = "refresh_token"
INACTIVE: dict[str, Any] = {"active": False}


@dataclass(frozen=True, slots=True)
class Presented:
    """A validly signed, unexpired OAuth token of this issuer, and the row behind it: the
    OAuth session (a user's access or refresh token) or the client token (client_credentials)."""

    token_type: str
    client_id: str
    sub: str
    scope: str
    iat: int
    exp: int
    session_row: AuthSession | None = None
    client_token: ClientToken | None = None
    current: bool = True  # a refresh token: the session's live one (not a spent one)


def identify(session: Session, token: str) -> Presented | None:
    """The OAuth token `token` is, read with its row; None for anything else (the service's
    own /auth tokens, ID tokens, expired or forged ones, unknown sessions)."""
    header = oauth_access_header()
    if header is not None and token.partition(".")[0] == header:
        return _access(session, token)
    try:
        claims = decode_token(token, TokenType.REFRESH)
    except InvalidToken:
        return None
    row = session.get(AuthSession, claims.sid, populate_existing=True)
    if row is None or row.kind is not SessionKind.OAUTH or row.client_id is None:
        return None
    if row.user_id != claims.sub:
        return None
    issued = row.rotated_at or row.created_at
    return Presented(
        token_type=REFRESH_TOKEN,
        client_id=row.client_id,
        sub=str(row.user_id),
        scope=row.scope or "",
        iat=int(issued.timestamp()),
        exp=int(claims.exp.timestamp()),
        session_row=row,
        current=constant_time_equals(claims.jti, row.refresh_jti),
    )


def _access(session: Session, token: str) -> Presented | None:
    try:
        claims = decode_oauth_access_token(token)
    except InvalidToken:
        return None
    common: dict[str, Any] = {
        "token_type": ACCESS_TOKEN,
        "client_id": claims.client_id,
        "sub": claims.sub,
        "scope": " ".join(sorted(claims.scope)),
        "iat": claims.iat,
        "exp": int(claims.exp.timestamp()),
    }
    if claims.sid is None:  # a client's own token
        row = clients.get_client_token(session, claims.jti)
        if row is None or row.client_id != claims.client_id or claims.sub != claims.client_id:
            return None
        return Presented(**common, client_token=row)
    auth_session = session.get(AuthSession, claims.sid, populate_existing=True)
    if (
        auth_session is None
        or auth_session.kind is not SessionKind.OAUTH
        or auth_session.client_id != claims.client_id
        or str(auth_session.user_id) != claims.sub
    ):
        return None
    return Presented(**common, session_row=auth_session)


def is_live(session: Session, presented: Presented) -> bool:
    """Live now: its session or client token unrevoked and unexpired, its user active."""
    now = utcnow()
    if presented.client_token is not None:
        row = presented.client_token
        return row.revoked_at is None and row.expires_at > now
    auth_session = presented.session_row
    assert auth_session is not None
    if not presented.current or auth_session.revoked_at is not None:
        return False
    if auth_session.expires_at <= now:
        return False
    user = session.get(User, auth_session.user_id, populate_existing=True)
    return user is not None and user.is_active


def introspect(session: Session, token: str) -> dict[str, Any]:
    """RFC 7662 §2.2: the token's claims if it is live, else only `active: false`."""
    presented = identify(session, token) if token else None
    live = presented is not None and is_live(session, presented)
    session.commit()
    if not live:
        return dict(INACTIVE)
    assert presented is not None
    answer: dict[str, Any] = {
        "active": True,
        "sub": presented.sub,
        "client_id": presented.client_id,
        "scope": presented.scope,
        "exp": presented.exp,
        "iat": presented.iat,
        "token_type": presented.token_type,
        "iss": issuer(),
        "aud": issuer(),
    }
    if presented.session_row is not None:
        answer["sid"] = str(presented.session_row.id)
    return answer


def introspection_request(
    session: Session, *, form: Mapping[str, Sequence[str]], basic: tuple[str, str] | None
) -> dict[str, Any]:
    """RFC 7662 §2.1: a confidential client authenticates (401 invalid_client otherwise,
    public clients included), then asks about `token` (`token_type_hint` is optional, and
    not needed: the token's form tells)."""
    one = single_values(form)
    client = authenticate_client(session, one, basic)
    if client.public:
        raise InvalidClient("Introspection needs a confidential client's credentials")
    token = one.get("token")
    if not token:
        raise InvalidRequest("token is required")
    return introspect(session, token)
