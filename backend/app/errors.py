"""Typed domain errors. Domain code raises these; each carries its HTTP answer (status,
headers, `{"detail"}` body), which the one handler in `api/errors.py` writes. The API
answers the English `detail`; a hosted page shows it translated (its text is marked `N_`)."""

from typing import Any

from app.core.http_auth import bearer_challenge
from app.core.i18n import N_

RETRY_UNAVAILABLE_S = 5  # Retry-After of a 503: a dependency is away, try again soon


class DomainError(Exception):
    """Base of every refusal the domain can express."""

    detail: str = N_("Request refused")
    status: int = 400

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail

    def headers(self) -> dict[str, str]:
        # RFC 7235 §3.1: a 401 names its scheme; the API's is the bearer token.
        return {"WWW-Authenticate": bearer_challenge()} if self.status == 401 else {}

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail}


class BadRequest(DomainError):
    """A request the domain refuses as malformed for what it asks (answered 400)."""

    status = 400
    detail = N_("Bad request")


class InvalidToken(DomainError):
    status = 401
    detail = N_("Could not validate credentials")


class InvalidCredentials(DomainError):
    status = 401
    detail = N_("Incorrect email or password")


class InactiveUser(DomainError):
    status = 403
    detail = N_("Inactive user")


class Forbidden(DomainError):
    status = 403
    detail = N_("Not enough permissions")


class InsufficientScope(Forbidden):
    """An OAuth access token whose scope does not name what the request needs, though the
    user's role holds it (RFC 6750 §3.1: 403 with the scope needed)."""

    detail = N_("The access token's scope does not allow this request")

    def __init__(self, needed: set[str]) -> None:
        super().__init__()
        self.scope = " ".join(sorted(needed))

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": bearer_challenge("insufficient_scope", scope=self.scope)}


class FreshLoginRequired(Forbidden):
    """A credential change (password, email, TOTP, passkey) from a session that may not make
    one: an OAuth access token. Only a password or passkey login on /auth/* may."""

    detail = N_(
        "Credentials can be changed only with a token from a password or passkey login"
        " (POST /auth/login), not with an OAuth access token"
    )


class RegistrationClosed(DomainError):
    status = 403
    detail = N_("Registration is closed")


class NotFound(DomainError):
    status = 404
    detail = N_("Not found")


class EmailTaken(DomainError):
    status = 409
    detail = N_("A user with this email already exists")


class LastAdmin(DomainError):
    status = 409
    detail = N_("The last active admin cannot be demoted, deactivated or deleted")


class RateLimited(DomainError):
    """Too many attempts, or an account locked out: answered 429 with Retry-After."""

    status = 429
    detail = N_("Too many attempts, try again later")

    def __init__(self, detail: str | None = None, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class AccountLocked(RateLimited):
    detail = N_("Account temporarily locked after too many failed logins")


class ServiceUnavailable(DomainError):
    status = 503
    detail = N_("Service temporarily unavailable")

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_UNAVAILABLE_S)}


class HashQueueFull(ServiceUnavailable):
    """More password checks waiting than PASSWORD_HASH_QUEUE: refused at once (503)."""

    detail = N_("Too many password checks in progress, try again shortly")


class Invalid(DomainError):
    """A well-formed body naming something that does not exist or may not be there (an
    unknown role or permission, a limit passed): 422, naming it, in the shape of FastAPI's
    own 422 (a list of errors), which the OpenAPI documents for every body."""

    status = 422
    detail = N_("Unprocessable request")

    def body(self) -> dict[str, Any]:
        return {"detail": [{"type": "value_error", "loc": ["body"], "msg": self.detail}]}


class Conflict(DomainError):
    status = 409
    detail = N_("Conflict")


class BadToken(DomainError):
    """A mailed token (reset, verification) that is unknown, expired or already used."""

    status = 400
    detail = N_("Invalid or expired token")


class EmailNotVerified(DomainError):
    status = 403
    detail = N_("Email not verified")


class IncorrectPassword(DomainError):
    """The caller's own password, asked again before a sensitive change, is wrong."""

    status = 400
    detail = N_("Incorrect password")


class InvalidCode(DomainError):
    """A wrong one-time code while setting up MFA."""

    status = 400
    detail = N_("Invalid authentication code")


class MfaFailed(DomainError):
    """The second step of a login refused: wrong, replayed or spent code."""

    status = 401
    detail = N_("Invalid authentication code")


class MfaNotStarted(DomainError):
    status = 400
    detail = N_("No TOTP set-up in progress: start one first")


class MfaAlreadyEnabled(Conflict):
    detail = N_("TOTP is already enabled")


class PasskeyRefused(BadRequest):
    """A passkey registration that does not verify (answered 400; nothing is stored)."""

    detail = N_("Passkey registration refused")


class PasskeyLoginFailed(DomainError):
    """A passkey sign-in refused, whatever the reason (answered 401)."""

    status = 401
    detail = N_("Passkey sign-in failed")


class WeakPassword(Invalid):
    """A new password the policy refuses (core/password_policy.py): 422 in FastAPI's shape,
    at the body field that held it, naming the rule; the password itself is never echoed."""

    def __init__(self, message: str, *, rule: str, field: str = "password") -> None:
        super().__init__(message)
        self.rule = rule
        self.field = field

    def body(self) -> dict[str, Any]:
        error = {"type": "value_error", "loc": ["body", self.field], "msg": self.detail}
        return {"detail": [{**error, "ctx": {"rule": self.rule}}]}


class ContentTooLarge(DomainError):
    """More in one request than the service takes (RFC 9110 §15.5.14)."""

    status = 413
    detail = "Request content too large"


class UnsupportedMediaType(DomainError):
    status = 415
    detail = "Unsupported media type"
