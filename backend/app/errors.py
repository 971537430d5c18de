"""Typed domain errors. Domain code raises these; `api/errors.py` maps them to HTTP answers."""


class DomainError(Exception):
    """Base of every refusal the domain can express."""

    detail: str = "Request refused"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail


class BadRequest(DomainError):
    """A request the domain refuses as malformed for what it asks (answered 400)."""

    detail = "Bad request"


class InvalidToken(DomainError):
    detail = "Could not validate credentials"


class InvalidCredentials(DomainError):
    detail = "Incorrect email or password"


class InactiveUser(DomainError):
    detail = "Inactive user"


class Forbidden(DomainError):
    detail = "Not enough permissions"


class InsufficientScope(Forbidden):
    """An OAuth access token whose scope does not name what the request needs, though the
    user's role holds it (RFC 6750 §3.1: 403 with the scope needed)."""

    detail = "The access token's scope does not allow this request"

    def __init__(self, needed: set[str]) -> None:
        super().__init__()
        self.scope = " ".join(sorted(needed))


class FreshLoginRequired(Forbidden):
    """A credential change (password, email, TOTP, passkey) from a session that may not make
    one: an OAuth access token. Only a password or passkey login on /auth/* may."""

    detail = (
        "Credentials can be changed only with a token from a password or passkey login"
        " (POST /auth/login), not with an OAuth access token"
    )


class RegistrationClosed(DomainError):
    detail = "Registration is closed"


class NotFound(DomainError):
    detail = "Not found"


class EmailTaken(DomainError):
    detail = "A user with this email already exists"


class LastAdmin(DomainError):
    detail = "The last active admin cannot be demoted, deactivated or deleted"


class RateLimited(DomainError):
    """Too many attempts, or an account locked out: answered 429 with Retry-After."""

    detail = "Too many attempts, try again later"

    def __init__(self, detail: str | None = None, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class AccountLocked(RateLimited):
    detail = "Account temporarily locked after too many failed logins"


class ServiceUnavailable(DomainError):
    detail = "Service temporarily unavailable"


class HashQueueFull(ServiceUnavailable):
    """More password checks waiting than PASSWORD_HASH_QUEUE: refused at once (503)."""

    detail = "Too many password checks in progress, try again shortly"


class Conflict(DomainError):
    detail = "Conflict"


class BadToken(DomainError):
    """A mailed token (reset, verification) that is unknown, expired or already used."""

    detail = "Invalid or expired token"


class EmailNotVerified(DomainError):
    detail = "Email not verified"


class IncorrectPassword(DomainError):
    """The caller's own password, asked again before a sensitive change, is wrong."""

    detail = "Incorrect password"


class InvalidCode(DomainError):
    """A wrong one-time code while setting up MFA."""

    detail = "Invalid authentication code"


class MfaFailed(DomainError):
    """The second step of a login refused: wrong, replayed or spent code."""

    detail = "Invalid authentication code"


class MfaNotStarted(DomainError):
    detail = "No TOTP set-up in progress: start one first"


class MfaAlreadyEnabled(Conflict):
    detail = "TOTP is already enabled"


class PasskeyRefused(BadRequest):
    """A passkey registration that does not verify (answered 400; nothing is stored)."""

    detail = "Passkey registration refused"


class PasskeyLoginFailed(DomainError):
    """A passkey sign-in refused, whatever the reason (answered 401)."""

    detail = "Passkey sign-in failed"
