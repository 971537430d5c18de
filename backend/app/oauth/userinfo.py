"""The userinfo endpoint (OIDC Core §5.3): `sub` and the claims of the token's scopes, for a
live at+jwt with `openid`, checked like every API request (session, is_active)."""

from typing import Any

from app.auth.tokens import authenticate
from app.core.security import TokenKind, decode
from app.errors import InvalidToken
from app.oauth.errors import InsufficientScope, InvalidBearer, MissingBearer
from app.oauth.tokens import user_claims


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
    return {"sub": str(caller.user.id), **user_claims(caller.user, claims.scope)}
