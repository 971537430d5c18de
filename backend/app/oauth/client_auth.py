"""Client authentication at the token endpoint (RFC 6749 §2.3): HTTP Basic or
`client_secret` in the form, never both; public clients name themselves with `client_id`."""

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import unquote

from sqlmodel import Session

from app.crud import clients
from app.models.client import OAuthClient
from app.oauth.errors import InvalidClient, InvalidRequest


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the request presented: Basic (client_id, secret) and/or form values."""

    basic: tuple[str, str] | None
    client_id: str | None
    client_secret: str | None


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """`Authorization: Basic` credentials, form-urlencoded inside as RFC 6749 §2.3.1 says."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("Malformed Basic credentials", basic=True) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClient("Malformed Basic credentials", basic=True)
    return unquote(client_id), unquote(secret)


def authenticate(session: Session, credentials: Credentials) -> OAuthClient:
    basic = credentials.basic
    if basic is not None and credentials.client_secret is not None:
        raise InvalidRequest("Use one client authentication method, not two")
    if basic is not None:
        if credentials.client_id is not None and credentials.client_id != basic[0]:
            raise InvalidClient("client_id does not match the credentials", basic=True)
        client = clients.get_client(session, basic[0])
        if client is None or client.public or not clients.secret_matches(client, basic[1]):
            raise InvalidClient(basic=True)
        return client
    if not credentials.client_id:
        raise InvalidClient("Client authentication is required")
    client = clients.get_client(session, credentials.client_id)
    if client is None:
        raise InvalidClient()
    if client.public:
        if credentials.client_secret is not None:
            raise InvalidClient("A public client has no secret")
        return client
    if credentials.client_secret is None or not clients.secret_matches(
        client, credentials.client_secret
    ):
        raise InvalidClient()
    return client
