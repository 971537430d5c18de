"""Secrets kept at rest (the TOTP seeds, the signing keys `manage keys rotate` stages):
Fernet, with a key derived from SECRET_KEY by HKDF, one per kind of secret (`info`).

A database dump alone does not reveal the seeds. Changing SECRET_KEY makes the stored seeds
unreadable: their owners then log in with a recovery code, or an admin runs
`manage reset-mfa`.
"""

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.core.config import get_settings

KEY_INFO = b"authsvc totp-secret v1"
SIGNING_KEY_INFO = b"authsvc signing-key v1"


@lru_cache
def _fernet(info: bytes) -> Fernet:
    secret = get_settings().SECRET_KEY
    assert secret is not None  # settings fill it in or refuse to start
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plaintext: str, *, info: bytes = KEY_INFO) -> str:
    return _fernet(info).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str, *, info: bytes = KEY_INFO) -> str | None:
    """The plaintext, or None when it cannot be read (another SECRET_KEY, or tampering)."""
    try:
        return _fernet(info).decrypt(ciphertext.encode()).decode()
    except (InvalidToken, ValueError):
        return None
