"""The userinfo endpoint (OIDC Core §5.3): `sub` and the claims of the token's scopes, for a
live at+jwt with `openid`, checked like every API request (session, is_active)."""

import uuid
from typing import Any

from sqlmodel import Session

from app.auth.tokens import authenticate
from app.core.security import TokenKind, decode
from app.db import get_engine
from app.errors import InvalidToken
from app.models.client import Scope
from app.oauth import resources
from app.oauth.errors import InsufficientScope, InvalidBearer, MissingBearer
from app.oauth.tokens import user_claims
from app.steps import run_step


async def userinfo(token: str | None) -> dict[str, Any]:
    if not token:
        raise MissingBearer("A bearer access token is required")
    try:
        claims = decode(token, TokenKind.OAUTH_ACCESS)
        caller = await authenticate(token)
    except InvalidToken:
        raise InvalidBearer("The access token is invalid, expired or revoked") from None
    if "openid" not in claims.scope:
        raise InsufficientScope("The access token lacks the openid scope")
    answer = {"sub": str(caller.user.id), **user_claims(caller.user, claims.scope)}
    if claims.scope & {Scope.ROLES, Scope.ORGANIZATIONS}:
        organization_id = uuid.UUID(claims.org_id) if claims.org_id else None
        answer.update(
            await run_step(_identity_claims, caller.user.id, organization_id, claims.scope)
        )
    return answer


def _identity_claims(
    user_id: uuid.UUID, organization_id: uuid.UUID | None, scope: frozenset[str]
) -> dict[str, list[str]]:
    with Session(get_engine()) as session:
        return resources.identity_claims(
            session, user_id=user_id, organization_id=organization_id, scope=scope
        )
