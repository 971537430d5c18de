"""Passkeys: WebAuthn ceremonies on top of the `webauthn` package (py_webauthn)."""
