"""OAuth clients, remembered consents and authorization codes: session-first helpers; the
writers are steps (db.transaction commits them)."""

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy import bindparam, delete, func, update
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from app.core.security import constant_time_equals, token_digest
from app.crud import audit, authz, sessions
from app.crud.audit import Actor
from app.errors import BadRequest, Invalid, NotFound
from app.models.client import (
    CODE_NEEDS_REDIRECT_URI,
    PUBLIC_NEEDS_PKCE,
    AuthorizationCode,
    ClientCreate,
    ClientCreated,
    ClientRead,
    ClientToken,
    ClientUpdate,
    GrantType,
    OAuthClient,
    OAuthConsent,
)
from app.models.client_version import CLIENTS_VERSION_ID, ClientsVersion
from app.models.common import utcnow
from app.reads import prepared, read_first

CLIENT_ID_BYTES = 18
CLIENT_SECRET_BYTES = 32  # 256 bits: a SHA-256 digest of it cannot be brute-forced
MAX_ID_LENGTH = 64  # client ids and token jtis: the columns' length


class HasSecret(Protocol):
    """What client authentication reads of a client: the ORM row or a ClientAuthRow."""

    @property
    def public(self) -> bool: ...

    @property
    def secret_digest(self) -> str | None: ...


def client_read(client: OAuthClient) -> ClientRead:
    return ClientRead.model_validate(client, from_attributes=True)


def _new_secret() -> tuple[str, str]:
    secret = secrets.token_urlsafe(CLIENT_SECRET_BYTES)
    return secret, token_digest(secret)


def secret_matches(client: HasSecret, presented: str) -> bool:
    """Constant-time comparison of digests; a public client has no secret to match."""
    if client.secret_digest is None:
        return False
    return constant_time_equals(token_digest(presented), client.secret_digest)


def _new_client_id() -> str:
    """Random, and never starting with "-": `manage client delete ID` would read an option."""
    while (client_id := secrets.token_urlsafe(CLIENT_ID_BYTES)).startswith("-"):
        pass
    return client_id


def _check_resources(session: Session, identifiers: list[str]) -> None:
    """Every resource a client is registered for exists (422 naming one that does not)."""
    for identifier in identifiers:
        if authz.resource_id_of(session, identifier) is None:
            raise Invalid(f"Unknown resource: {identifier}")


def create_client(session: Session, *, body: ClientCreate, actor: Actor) -> ClientCreated:
    _check_resources(session, body.resources)
    secret, digest = (None, None) if body.public else _new_secret()
    client = OAuthClient(
        client_id=_new_client_id(),
        name=body.name,
        secret_digest=digest,
        redirect_uris=body.redirect_uris,
        post_logout_redirect_uris=body.post_logout_redirect_uris,
        public=body.public,
        first_party=body.first_party,
        require_pkce=body.require_pkce,
        grant_types=[g.value for g in body.grant_types],
        scopes=list(body.scopes),
        id_token_signed_response_alg=body.id_token_signed_response_alg,
        resources=list(body.resources),
        organization_usage=body.organization_usage.value,
    )
    session.add(client)
    session.flush()
    audit.record(
        session, "oauth.client_created", actor=actor, client_id=client.client_id, name=client.name
    )
    return ClientCreated(**client_read(client).model_dump(), client_secret=secret)


def plausible_id(value: str) -> bool:
    """Whether `value` can be a client id or a token jti at all: an empty or overlong one is
    not looked up (it would match nothing, and a long one costs the database a comparison)."""
    return 0 < len(value) <= MAX_ID_LENGTH


def get_client(session: Session, client_id: str) -> OAuthClient | None:
    if not plausible_id(client_id):
        return None
    return session.get(OAuthClient, client_id, populate_existing=True)


@dataclass(frozen=True, slots=True)
class ClientAuthRow:
    """A client as client authentication sees it (client_auth.check), read without the ORM."""

    client_id: str
    public: bool
    secret_digest: str | None


# Read by every introspection and revocation request, with the row of the token presented
# (the session of a user's token, the client token of a client's own): one SELECT of plain
# columns on the event loop (reads.read_first), not ORM objects in a worker thread. The token's
# row is outer-joined: missing, its columns are NULL.
CLIENT_AUTH = select_columns(col(OAuthClient.public), col(OAuthClient.secret_digest)).where(
    col(OAuthClient.client_id) == bindparam("client_id")
)
CLIENT_AND_SESSION = sessions.with_session_state(CLIENT_AUTH, OAuthClient)
CLIENT_AND_CLIENT_TOKEN = CLIENT_AUTH.add_columns(
    col(ClientToken.client_id), col(ClientToken.revoked_at), col(ClientToken.expires_at)
).join_from(OAuthClient, ClientToken, col(ClientToken.jti) == bindparam("jti"), isouter=True)


@dataclass(frozen=True, slots=True)
class ClientTokenRow:
    """The state of a client's own token (its row by jti), read without the ORM."""

    client_id: str
    revoked_at: datetime | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ClientAndToken:
    """The client a request names (None: no such client) and the row of the token it
    presented, whichever kind was asked for (None: none, or not asked for)."""

    client: ClientAuthRow | None
    session: sessions.SessionState | None = None
    client_token: ClientTokenRow | None = None


async def read_client_and_token(
    client_id: str, *, session_id: uuid.UUID | None = None, client_token_jti: str | None = None
) -> ClientAndToken:
    """The client `client_id` and, in the same read, the session `session_id` (with its
    user) or the client token `client_token_jti`, as they are in the database now."""
    if not plausible_id(client_id):
        return ClientAndToken(client=None)
    params: dict[str, object] = {"client_id": client_id}
    statement: sessions.AnySelect
    if session_id is not None:
        statement, params["sid"] = CLIENT_AND_SESSION, session_id
    elif client_token_jti is not None and plausible_id(client_token_jti):
        statement, params["jti"] = CLIENT_AND_CLIENT_TOKEN, client_token_jti
    else:
        statement = CLIENT_AUTH
    row = await read_first(prepared(statement), params)
    if row is None:
        return ClientAndToken(client=None)
    public, secret_digest, *token_row = row
    client = ClientAuthRow(client_id=client_id, public=public, secret_digest=secret_digest)
    if statement is CLIENT_AND_SESSION:
        return ClientAndToken(client=client, session=sessions.session_state(token_row))
    if statement is CLIENT_AND_CLIENT_TOKEN and token_row[0] is not None:
        owner, revoked_at, expires_at = token_row
        row_of_token = ClientTokenRow(client_id=owner, revoked_at=revoked_at, expires_at=expires_at)
        return ClientAndToken(client=client, client_token=row_of_token)
    return ClientAndToken(client=client)


def names(session: Session, client_ids: set[str]) -> dict[str, str]:
    """The names of these clients (those that exist), by client id."""
    if not client_ids:
        return {}
    rows = session.exec(
        select(OAuthClient.client_id, OAuthClient.name).where(
            col(OAuthClient.client_id).in_(sorted(client_ids))
        )
    ).all()
    return dict(rows)


def require_client(session: Session, client_id: str) -> OAuthClient:
    client = get_client(session, client_id)
    if client is None:
        raise NotFound("Client not found")
    return client


# The version of the client rows (models/client_version.py), read on the event loop by
# every OAuth CORS request that carries an unconfigured Origin (api/oauth_cors.py).
CLIENTS_VERSION = select_columns(col(ClientsVersion.version)).where(
    col(ClientsVersion.id) == bindparam("id")
)


async def clients_version() -> str | None:
    """The current version of the client rows: it changes with every client change, in that
    change's transaction; None before the first."""
    row = await read_first(prepared(CLIENTS_VERSION), {"id": CLIENTS_VERSION_ID})
    return None if row is None else str(row[0])


def public_client_origins(session: Session) -> set[str]:
    """The origins (scheme://host[:port]) of the public clients' redirect URIs: the browser
    apps that call the token and userinfo endpoints across origins."""
    rows = session.exec(
        select(OAuthClient.redirect_uris).where(col(OAuthClient.public).is_(True))
    ).all()
    origins = set()
    for uris in rows:
        for uri in uris:
            parts = urlsplit(uri)
            origins.add(f"{parts.scheme}://{parts.netloc}")
    return origins


def list_clients(session: Session, *, skip: int, limit: int) -> tuple[list[ClientRead], int]:
    total = session.exec(select(func.count()).select_from(OAuthClient)).one()
    rows = session.exec(
        select(OAuthClient)
        .order_by(col(OAuthClient.created_at), col(OAuthClient.client_id))
        .offset(skip)
        .limit(limit)
    ).all()
    return [client_read(row) for row in rows], total


def update_client(
    session: Session, *, client: OAuthClient, body: ClientUpdate, actor: Actor
) -> ClientRead:
    changes = body.model_dump(exclude_unset=True)
    if client.public and GrantType.CLIENT_CREDENTIALS in changes.get("grant_types", []):
        raise BadRequest("A public client cannot use client_credentials")
    if client.public and changes.get("require_pkce") is False:
        raise BadRequest(PUBLIC_NEEDS_PKCE)
    grants = changes.get("grant_types", client.grant_types)
    if GrantType.AUTHORIZATION_CODE in grants and not changes.get(
        "redirect_uris", client.redirect_uris
    ):
        raise BadRequest(CODE_NEEDS_REDIRECT_URI)
    if "resources" in changes:
        _check_resources(session, changes["resources"])
    for name, value in changes.items():
        if isinstance(value, list):
            value = list(dict.fromkeys(str(item) for item in value))
        setattr(client, name, value)
    client.updated_at = utcnow()
    session.add(client)
    audit.record(
        session,
        "oauth.client_updated",
        actor=actor,
        client_id=client.client_id,
        fields=sorted(changes),
    )
    return client_read(client)


def rotate_secret(session: Session, *, client: OAuthClient, actor: Actor) -> ClientCreated:
    """A new secret for a confidential client; the old one stops working at once."""
    if client.public:
        raise NotFound("A public client has no secret")
    secret, digest = _new_secret()
    client.secret_digest = digest
    client.updated_at = utcnow()
    session.add(client)
    ended = revoke_client_tokens(session, client.client_id)
    audit.record(
        session,
        "oauth.client_secret_rotated",
        actor=actor,
        client_id=client.client_id,
        client_tokens=ended,
    )
    return ClientCreated(**client_read(client).model_dump(), client_secret=secret)


def delete_client(session: Session, *, client: OAuthClient, actor: Actor) -> None:
    """Delete a client and end every session and token issued to it (codes, consents and its
    client_credentials tokens go with it, by cascade)."""
    ended = sessions.revoke_client(session, client.client_id)
    audit.record(
        session, "oauth.client_deleted", actor=actor, client_id=client.client_id, sessions=ended
    )
    session.delete(client)


# --- consents -----------------------------------------------------------------------------


def consented_scopes(session: Session, *, user_id: uuid.UUID, client_id: str) -> set[str]:
    row = session.get(OAuthConsent, (user_id, client_id), populate_existing=True)
    return set(row.scopes) if row else set()


def remember_consent(
    session: Session, *, user_id: uuid.UUID, client_id: str, scopes: list[str], actor: Actor
) -> None:
    """Add `scopes` to what the user allowed this client. The caller commits."""
    row = session.get(OAuthConsent, (user_id, client_id), populate_existing=True)
    if row is None:
        session.add(OAuthConsent(user_id=user_id, client_id=client_id, scopes=sorted(scopes)))
    else:
        row.scopes = sorted(set(row.scopes) | set(scopes))
        row.updated_at = utcnow()
        session.add(row)
    audit.record(
        session,
        "oauth.consent_granted",
        actor=actor,
        subject_id=user_id,
        client_id=client_id,
        scopes=sorted(scopes),
    )


@dataclass(frozen=True, slots=True)
class Consent:
    """A third-party client the user allowed, and what they allowed it (scope names)."""

    client_id: str
    name: str
    scopes: list[str]
    granted_at: datetime
    updated_at: datetime


def consents_of(session: Session, user_id: uuid.UUID) -> list[Consent]:
    """Every client the user consented to, by name."""
    rows = session.exec(
        select(OAuthConsent, OAuthClient.name)
        .join(OAuthClient, col(OAuthClient.client_id) == col(OAuthConsent.client_id))
        .where(col(OAuthConsent.user_id) == user_id)
        .order_by(col(OAuthClient.name), col(OAuthClient.client_id))
    ).all()
    return [
        Consent(
            client_id=row.client_id,
            name=name,
            scopes=list(row.scopes),
            granted_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row, name in rows
    ]


def revoke_consent(session: Session, *, user_id: uuid.UUID, client_id: str, actor: Actor) -> int:
    """Withdraw what the user allowed a client: the consent goes (its next sign-in asks
    again), its codes not yet exchanged go, and every session it holds for the user ends
    (its refresh tokens fail at once). NotFound without such a consent; the sessions ended.

    The codes go before the sessions end: an exchange that claimed a code first has then
    committed its session, which the revocation that follows ends."""
    removed = session.exec(
        delete(OAuthConsent).where(
            col(OAuthConsent.user_id) == user_id, col(OAuthConsent.client_id) == client_id
        )
    )
    if removed.rowcount != 1:
        raise NotFound("No such application")
    session.exec(
        delete(AuthorizationCode).where(
            col(AuthorizationCode.user_id) == user_id,
            col(AuthorizationCode.client_id) == client_id,
            col(AuthorizationCode.used_at).is_(None),
        )
    )
    ended = sessions.revoke_client(session, client_id, user_id=user_id)
    audit.record(
        session,
        "oauth.consent_revoked",
        actor=actor,
        subject_id=user_id,
        client_id=client_id,
        sessions=ended,
    )
    return ended


# --- authorization codes ------------------------------------------------------------------


def add_code(session: Session, row: AuthorizationCode) -> None:
    session.add(row)
    session.flush()


def delete_stale_codes(session: Session, *, user_id: uuid.UUID, expired_before: datetime) -> None:
    """Forget a user's codes that expired long ago (kept until then so that a replay of a
    used code still revokes what it issued). The caller commits."""
    session.exec(
        delete(AuthorizationCode).where(
            col(AuthorizationCode.user_id) == user_id,
            col(AuthorizationCode.expires_at) < expired_before,
        )
    )


def get_code(session: Session, digest: str) -> AuthorizationCode | None:
    return session.get(AuthorizationCode, digest, populate_existing=True)


def claim_code(session: Session, *, digest: str, now: datetime) -> bool:
    """Mark an unused, unexpired code used: True for the one exchange that wins."""
    result = session.exec(
        update(AuthorizationCode)
        .where(
            col(AuthorizationCode.digest) == digest,
            col(AuthorizationCode.used_at).is_(None),
            col(AuthorizationCode.expires_at) > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def bind_code_session(session: Session, *, digest: str, session_id: uuid.UUID) -> None:
    """Remember the session a code's exchange opened, so a replay can revoke it."""
    session.exec(
        update(AuthorizationCode)
        .where(col(AuthorizationCode.digest) == digest)
        .values(session_id=session_id)
        .execution_options(synchronize_session=False)
    )


# --- client_credentials tokens ------------------------------------------------------------


def hold_secret(session: Session, *, client_id: str, secret_digest: str) -> bool:
    """Lock the client's row while its secret is still `secret_digest` (a no-op conditional
    UPDATE, held until commit): a rotation or deletion then runs wholly before (False) or
    after this transaction (and ends the token it records)."""
    result = session.exec(
        update(OAuthClient)
        .where(
            col(OAuthClient.client_id) == client_id,
            col(OAuthClient.secret_digest) == secret_digest,
        )
        .values(updated_at=OAuthClient.updated_at)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def add_client_token(
    session: Session, *, jti: str, client_id: str, scope: str, expires_at: datetime
) -> None:
    """Record a client's own access token, and forget its tokens that expired. The caller
    commits."""
    session.exec(
        delete(ClientToken).where(
            col(ClientToken.client_id) == client_id, col(ClientToken.expires_at) <= utcnow()
        )
    )
    session.add(ClientToken(jti=jti, client_id=client_id, scope=scope, expires_at=expires_at))


def revoke_client_token(session: Session, jti: str) -> bool:
    result = session.exec(
        update(ClientToken)
        .where(col(ClientToken.jti) == jti, col(ClientToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def revoke_client_tokens(session: Session, client_id: str) -> int:
    """End every token a client got for itself (at a secret rotation: they were obtained
    with the old secret alone)."""
    result = session.exec(
        update(ClientToken)
        .where(col(ClientToken.client_id) == client_id, col(ClientToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)
