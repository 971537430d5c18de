"""The hosted pages of the OpenID Connect provider: login, second factor, consent."""
