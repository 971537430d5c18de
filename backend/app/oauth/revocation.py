"""Token revocation (RFC 7009): a client ends its own tokens. Revoking a user's access or
refresh token ends the OAuth session behind it, so every token of that session stops
working at once; a client_credentials token ends alone.

The client and the token are found as introspection finds them (one read, on the event
loop); only the revocation itself, a conditional UPDATE and its audit event, runs in
a worker thread with an ORM session."""

from collections.abc import Mapping, Sequence

from sqlmodel import Session

from app.crud import audit, clients, sessions
from app.crud.audit import Actor
from app.oauth.client_auth import Credentials
from app.oauth.errors import InvalidRequest
from app.oauth.grants import single_values
from app.oauth.introspection import Presented, lookup
from app.steps import run_transaction


def end(session: Session, *, presented: Presented, actor: Actor) -> None:
    """End the session or client token behind `presented` (audited if this ended it: a
    second revocation, or one racing it, changes nothing and records nothing)."""
    details: dict[str, object]
    if presented.client_token_jti is not None:
        ended = clients.revoke_client_token(session, presented.client_token_jti)
        details = {"client_token": True}
    else:
        assert presented.session_id is not None
        ended = sessions.revoke(session, presented.session_id)
        details = {"session_id": str(presented.session_id)}
    if ended:
        audit.record(
            session,
            "oauth.token_revoked",
            actor=actor,
            subject_id=presented.user_id,
            client_id=presented.client_id,
            token_type=presented.token_type,
            **details,
        )


async def revocation_request(
    session: Session,
    *,
    form: Mapping[str, Sequence[str]],
    basic: tuple[str, str] | None,
    actor: Actor,
) -> None:
    """RFC 7009 §2.1: the client authenticates as at the token endpoint (a public client
    names itself); `token_type_hint` is optional and not needed, the token's form tells.
    A token that is not one of the client's (unknown, expired, another client's) is
    ignored, and the endpoint answers 200 alike (RFC 7009 §2.1, §2.2)."""
    one = single_values(form)
    token = one.get("token")
    found = await lookup(Credentials.of(one, basic), token)
    if not token:
        raise InvalidRequest("token is required")
    presented = found.presented
    if presented is None or presented.client_id != found.client.client_id:
        return
    await run_transaction(end, session, presented=presented, actor=actor)
