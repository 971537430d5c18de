"""Token revocation (RFC 7009): a client ends its own tokens. Revoking a user's access or
refresh token ends the OAuth session behind it, so every token of that session stops
working at once; a client_credentials token ends alone."""

from collections.abc import Mapping, Sequence

from sqlmodel import Session

from app.crud import audit, clients, sessions
from app.crud.audit import Actor
from app.models.client import OAuthClient
from app.oauth.errors import InvalidRequest
from app.oauth.grants import authenticate_client, single_values
from app.oauth.introspection import identify


def revoke(session: Session, *, client: OAuthClient, token: str, actor: Actor) -> None:
    """End `token` if it is one of `client`'s; anything else (unknown, expired, another
    client's) is ignored, and the endpoint answers 200 alike (RFC 7009 §2.1, §2.2)."""
    presented = identify(session, token)
    if presented is None or presented.client_id != client.client_id:
        session.commit()
        return
    if presented.client_token is not None:
        ended = clients.revoke_client_token(session, presented.client_token.jti)
        details: dict[str, object] = {"client_token": True}
        subject = None
    else:
        row = presented.session_row
        assert row is not None
        ended = sessions.revoke(session, row.id)
        details = {"session_id": str(row.id)}
        subject = row.user_id
    if ended:
        audit.record(
            session,
            "oauth.token_revoked",
            actor=actor,
            subject_id=subject,
            client_id=client.client_id,
            token_type=presented.token_type,
            **details,
        )
    session.commit()


def revocation_request(
    session: Session,
    *,
    form: Mapping[str, Sequence[str]],
    basic: tuple[str, str] | None,
    actor: Actor,
) -> None:
    """RFC 7009 §2.1: the client authenticates as at the token endpoint (a public client
    names itself); `token_type_hint` is optional and not needed, the token's form tells."""
    one = single_values(form)
    client = authenticate_client(session, one, basic)
    token = one.get("token")
    if not token:
        raise InvalidRequest("token is required")
    revoke(session, client=client, token=token, actor=actor)
