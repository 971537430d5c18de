"""Settings that production accepts, for tests that then break one of them."""

PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": "3f8a1c9e5b7d20f4a6c8e1b3d5f70a92c4e6b8d0f2a4c6e8b1d3f5a7c9e0b2d4",
    "BCRYPT_ROUNDS": "12",
    "PUBLIC_URL": "https://auth.example.com",
    "FRONTEND_URL": "https://app.example.com",
    "BACKEND_CORS_ORIGINS": "https://app.example.com",
    "METRICS_TOKEN": "metrics-bearer-9c1f5e2a7b4d8036",
}
