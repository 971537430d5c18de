"""The OAuth 2 / OpenID Connect protocol: one module per endpoint or grant, no HTTP objects."""
