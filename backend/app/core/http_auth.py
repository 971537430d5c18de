"""RFC 6750 §3 challenges (`WWW-Authenticate: Bearer ...`), built from an error's fields: the
one place that writes them, so none is chosen by matching message text, and every value is
a quoted-string of the characters RFC 6750 allows in it."""

import re

# RFC 6750 §3: error, error_description and scope use %x20-21 / %x23-5B / %x5D-7E only
# (no double quote, no backslash, nothing outside printable ASCII).
_NOT_ALLOWED = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def quoted(value: str) -> str:
    return '"' + _NOT_ALLOWED.sub("?", value) + '"'


def bearer_challenge(
    error: str | None = None, *, description: str | None = None, scope: str | None = None
) -> str:
    """`Bearer`, with the error's attributes when there is an error (none when the request
    carried no token at all: RFC 6750 §3.1)."""
    attributes = [
        f"{name}={quoted(value)}"
        for name, value in (("error", error), ("error_description", description), ("scope", scope))
        if value is not None
    ]
    return "Bearer " + ", ".join(attributes) if attributes else "Bearer"
