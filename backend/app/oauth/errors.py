"""The protocol's errors, typed by their RFC 6749 `error` code, each carrying its answer:
api/oauth.py writes them as JSON (token, userinfo, introspection, revocation); the hosted
pages as redirects to the client."""

from app.core.http_auth import bearer_challenge


class OAuthError(Exception):
    """An RFC 6749 §5.2 / §4.1.2.1 error: `error` code, human description, HTTP status."""

    error = "invalid_request"
    status = 400

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed: 401, with `WWW-Authenticate: Basic` if Basic was used."""

    error = "invalid_client"
    status = 401

    def __init__(self, description: str = "Client authentication failed", *, basic: bool = False):
        super().__init__(description)
        self.basic = basic

    def headers(self) -> dict[str, str]:
        # RFC 6749 §5.2: the scheme the client used, when it used HTTP authentication.
        return {"WWW-Authenticate": 'Basic realm="oauth"'} if self.basic else {}


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    error = "invalid_target"  # RFC 8707 §2: an unknown or unregistered resource


class AccessDenied(OAuthError):
    error = "access_denied"


class RequestNotSupported(OAuthError):
    error = "request_not_supported"  # OIDC Core §6: request objects


class RequestUriNotSupported(OAuthError):
    error = "request_uri_not_supported"


class RegistrationNotSupported(OAuthError):
    error = "registration_not_supported"  # OIDC Core §7.2.1


class LoginRequired(OAuthError):
    error = "login_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class AccountSelectionRequired(OAuthError):
    error = "account_selection_required"  # OIDC Core §3.1.2.6


class InteractionRequired(OAuthError):
    error = "interaction_required"  # OIDC Core §3.1.2.6: the user must act on a page


class BearerError(OAuthError):
    """An error of a resource request (RFC 6750 §3.1): its challenge names it."""

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": bearer_challenge(self.error, description=self.description)}


class InvalidBearer(BearerError):
    """A revoked, expired or wrong access token."""

    error = "invalid_token"
    status = 401


class MissingBearer(InvalidBearer):
    """No access token at all: the challenge carries no error code (RFC 6750 §3.1)."""

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": bearer_challenge()}


class InsufficientScope(BearerError):
    error = "insufficient_scope"
    status = 403


class BadAuthorizationRequest(Exception):
    """An authorization request that must not redirect (unknown client, redirect URI not
    registered): answered with an HTML error page."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class RedirectedError(Exception):
    """An authorization request error sent back to the client's registered redirect URI."""

    def __init__(self, error: OAuthError, *, redirect_uri: str, state: str | None) -> None:
        super().__init__(error.description)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state
