"""PASSWORD_BREACH_CHECK=hibp: is a new password in Have I Been Pwned's Pwned Passwords?

k-anonymity (the range API): only the first 5 hex characters of the password's SHA-1 are sent;
the answer lists every known suffix under that prefix (padded with decoys, `Add-Padding`), and
the match is made here. The service never waits long for it: a timeout or any error lets the
password through, and is logged without the password, its hash or its prefix.
"""

import hashlib
import logging

import httpx

from app.core.config import get_settings

logger = logging.getLogger(__name__)
PREFIX_LENGTH = 5


def _split(password: str) -> tuple[str, str]:
    """(prefix sent, suffix kept) of the password's SHA-1, upper-case hex as the API writes it."""
    digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()
    return digest[:PREFIX_LENGTH], digest[PREFIX_LENGTH:]


def _listed(body: str, suffix: str) -> bool:
    """Whether the range answer lists `suffix` with a count above 0 (padding lines have 0)."""
    for line in body.splitlines():
        found, _, count = line.strip().partition(":")
        if found.upper() == suffix:
            return count.strip().isdigit() and int(count) > 0
    return False


def _request(prefix: str) -> httpx.Request:
    settings = get_settings()
    headers = {"Add-Padding": "true", "User-Agent": settings.PROJECT_NAME}
    return httpx.Request("GET", settings.HIBP_RANGE_URL + prefix, headers=headers)


def _timeout() -> float:
    return get_settings().HIBP_TIMEOUT_SECONDS


def _unavailable(error: Exception) -> None:
    logger.warning(
        "password breach check unavailable (%s): the password was let through",
        type(error).__name__,
    )


def is_breached(password: str) -> bool:
    """True when Pwned Passwords lists it; False when it does not, or cannot be asked."""
    prefix, suffix = _split(password)
    try:
        with httpx.Client(timeout=_timeout()) as client:
            response = client.send(_request(prefix))
            response.raise_for_status()
    except httpx.HTTPError as error:
        _unavailable(error)
        return False
    return _listed(response.text, suffix)


async def is_breached_async(password: str) -> bool:
    """is_breached, awaited on the event loop (a registration waits at most the timeout)."""
    prefix, suffix = _split(password)
    try:
        async with httpx.AsyncClient(timeout=_timeout()) as client:
            response = await client.send(_request(prefix))
            response.raise_for_status()
    except httpx.HTTPError as error:
        _unavailable(error)
        return False
    return _listed(response.text, suffix)
