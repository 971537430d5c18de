"""What the admin console reads and keeps beyond the shared helpers: its own built-in client
row, and the emails behind the ids of an audit page."""

import uuid
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select

from app.crud import audit, clients
from app.crud.audit import SYSTEM
from app.models import client_version
from app.models.client import GrantType, OAuthClient, Scope
from app.models.common import utcnow
from app.models.user import User

CONSOLE_CLIENT_ID = "console"
CONSOLE_CLIENT_NAME = "Admin console"


def ensure_console_client(session: Session, *, redirect_uri: str) -> OAuthClient:
    """The console's client row as it must be: public (no secret), first-party (no consent),
    the code grant and `openid` only, redirecting to the console's callback at PUBLIC_URL.
    Created when missing, put back when changed (a new PUBLIC_URL, an edit through the API)."""
    wanted: dict[str, Any] = {
        "name": CONSOLE_CLIENT_NAME,
        "secret_digest": None,
        "redirect_uris": [redirect_uri],
        "post_logout_redirect_uris": [],
        "public": True,
        "first_party": True,
        "grant_types": [GrantType.AUTHORIZATION_CODE.value],
        "scopes": [Scope.OPENID.value],
    }
    row = clients.get_client(session, CONSOLE_CLIENT_ID)
    if row is None:
        # Two first sign-ins at once: the second waits here for the first's transaction, then
        # finds the row it created (theirs is as good), instead of failing on its insert.
        client_version.renew(session.connection())
        row = clients.get_client(session, CONSOLE_CLIENT_ID)
    if row is None:
        row = OAuthClient(client_id=CONSOLE_CLIENT_ID, **wanted)
        session.add(row)
        audit.record(
            session,
            "oauth.client_created",
            actor=SYSTEM,
            client_id=CONSOLE_CLIENT_ID,
            name=CONSOLE_CLIENT_NAME,
            builtin=True,
        )
    elif any(getattr(row, name) != value for name, value in wanted.items()):
        changed = sorted(name for name, value in wanted.items() if getattr(row, name) != value)
        for name, value in wanted.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        session.add(row)
        audit.record(
            session,
            "oauth.client_updated",
            actor=SYSTEM,
            client_id=CONSOLE_CLIENT_ID,
            fields=changed,
            builtin=True,
        )
    return row


def emails_by_id(session: Session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """The emails of the users among `ids` that still exist."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.exec(select(User.id, User.email).where(col(User.id).in_(wanted))).all()
    return {user_id: email for user_id, email in rows}
