"""Client authentication at the token endpoint (RFC 6749 §2.3): HTTP Basic or
`client_secret` in the form, never both; public clients name themselves with `client_id`."""

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar
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

    @classmethod
    def of(cls, one: Mapping[str, str], basic: tuple[str, str] | None) -> "Credentials":
        """The credentials of a request: its Basic header and its form's single values."""
        return cls(
            basic=basic, client_id=one.get("client_id"), client_secret=one.get("client_secret")
        )


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """`Authorization: Basic` credentials, form-urlencoded inside as RFC 6749 §2.3.1 says;
    ones that are not UTF-8 text without NUL are malformed (invalid_client)."""
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
    try:
        credentials = unquote(client_id, errors="strict"), unquote(secret, errors="strict")
    except UnicodeDecodeError:
        raise InvalidClient("Malformed Basic credentials", basic=True) from None
    if "\x00" in credentials[0] or "\x00" in credentials[1]:
        raise InvalidClient("Malformed Basic credentials", basic=True)
    return credentials


def claimed_client_id(credentials: Credentials) -> str:
    """The client the request names, after the rules that need no database: one method, not
    Basic and `client_secret` both; a form `client_id` beside Basic must be Basic's."""
    basic = credentials.basic
    if basic is not None and credentials.client_secret is not None:
        raise InvalidRequest("Use one client authentication method, not two")
    if basic is not None:
        if credentials.client_id is not None and credentials.client_id != basic[0]:
            raise InvalidClient("client_id does not match the credentials", basic=True)
        return basic[0]
    if not credentials.client_id:
        raise InvalidClient("Client authentication is required")
    return credentials.client_id


Client = TypeVar("Client", bound=clients.HasSecret)


def check(credentials: Credentials, client: Client | None) -> Client:
    """`client` (the row of claimed_client_id, None if there is none) if `credentials`
    authenticate it, else InvalidClient: Basic needs a confidential client and its secret; a
    form `client_secret` likewise; a public client names itself with `client_id` alone. The
    one place these rules live, for the ORM's row and the read path's alike."""
    if credentials.basic is not None:
        if (
            client is None
            or client.public
            or not clients.secret_matches(client, credentials.basic[1])
        ):
            raise InvalidClient(basic=True)
        return client
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


def authenticate(session: Session, credentials: Credentials) -> OAuthClient:
    """The client as an ORM row of `session`: for the token endpoint, whose grants read its
    registration and write in the same transaction."""
    return check(credentials, clients.get_client(session, claimed_client_id(credentials)))
