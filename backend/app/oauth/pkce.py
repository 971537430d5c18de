"""PKCE (RFC 7636), S256 only: the one place for its format, what an authorization request
must carry, and the check at the token endpoint.

A client registered with `require_pkce` false (confidential only) may send no challenge
with an OpenID request;
its code then binds none, and a `code_verifier` presented for it is a downgrade attempt
(RFC 9700 §2.1.1): refused like a wrong one."""

import re
from collections.abc import Mapping

from app.core.security import constant_time_equals, pkce_s256
from app.oauth.errors import InvalidRequest

# A code_verifier (RFC 7636 §4.1) and an S256 code_challenge (43 base64url characters)
# both fit this: the unreserved characters, 43 to 128 of them.
FORMAT = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def requested_challenge(params: Mapping[str, str], *, required: bool) -> str | None:
    """The S256 code_challenge of an authorization request, or None when it carries no PKCE
    at all and the client may omit it; `plain`, a missing method or a malformed challenge
    is invalid_request."""
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if not required and challenge is None and method is None:
        return None
    if method != "S256":
        raise InvalidRequest("PKCE is required: code_challenge_method=S256")
    if challenge is None or not FORMAT.fullmatch(challenge):
        raise InvalidRequest("code_challenge is missing or malformed")
    return challenge


def check_verifier_format(verifier: str | None) -> None:
    """A token request's code_verifier, if it sent one, must be well-formed."""
    if verifier is not None and not FORMAT.fullmatch(verifier):
        raise InvalidRequest("code_verifier is malformed")


def verifier_matches(challenge: str | None, verifier: str | None) -> bool:
    """Whether a token request's code_verifier fits the code's challenge: S256 of it for a
    code bound to one, and no verifier at all for a code issued without (downgrade)."""
    if challenge is None:
        return verifier is None
    return verifier is not None and constant_time_equals(pkce_s256(verifier), challenge)
