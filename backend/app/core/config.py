"""Settings: the only reader of the environment (and of `.env`)."""

import ipaddress
import json
import math
import os
import re
import secrets
from collections import Counter
from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import limits
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_SECRET_BYTES = 32
MIN_SECRET_BITS = 128
MIN_PRODUCTION_BCRYPT_ROUNDS = 10
# OWASP's smallest argon2id memory for interactive logins (19 MiB, with t=2): below it,
# production refuses to start, as it does for a bcrypt cost below 10.
MIN_PRODUCTION_ARGON2_MEMORY_KIB = 19_456
MIN_METRICS_TOKEN_BYTES = 16
MAX_LOGO_BYTES = 512 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=True,
    )

    PROJECT_NAME: str = "FastAPI JWT Auth"
    VERSION: str = "1.0.0"
    API_V1_STR: str = "/api/v1"
    ENVIRONMENT: Environment = Environment.DEVELOPMENT

    SECRET_KEY: str | None = None
    SECRET_KEY_FILE: Path = Path(".secret_key")
    ALGORITHM: Literal["HS256", "RS256", "ES256"] = "HS256"
    ACCESS_TOKEN_EXPIRE_MINUTES: int = Field(30, ge=1)
    REFRESH_TOKEN_EXPIRE_DAYS: int = Field(7, ge=1)
    REFRESH_REUSE_GRACE_SECONDS: int = Field(10, ge=0, le=300)
    JWT_ISSUER: str | None = None
    JWT_AUDIENCE: str | None = None
    JWT_PRIVATE_KEY_FILE: Path | None = None
    JWT_EXTRA_PUBLIC_KEY_FILES: Annotated[list[Path], NoDecode] = []
    # The asymmetric key of ID tokens and OAuth access tokens when ALGORITHM is HS256.
    OIDC_SIGNING_KEY_FILE: Path | None = None
    # How long a key `manage keys rotate` stages is published before it signs: longer than
    # any client caches the JWKS (OIDC.md revision 2). 0: at once (an emergency).
    KEY_PUBLISH_AHEAD_SECONDS: int = Field(3600, ge=0)

    DATABASE_URL: str = "sqlite:///./app.db"
    DB_POOL_SIZE: int = Field(20, ge=1)
    DB_MAX_OVERFLOW: int = Field(10, ge=0)
    DB_POOL_TIMEOUT: float = Field(30, gt=0)
    DB_READ_POOL_SIZE: int = Field(10, ge=1)  # the per-request read's, on the event loop
    REDIS_URL: str | None = None

    BACKEND_CORS_ORIGINS: Annotated[list[str], NoDecode] = ["http://localhost:3000"]

    FIRST_SUPERUSER_EMAIL: str = "admin@example.com"
    FIRST_SUPERUSER_PASSWORD: str | None = None
    FIRST_SUPERUSER_FULL_NAME: str = "Admin User"

    # The service's own password hash: new passwords, and old ones upgraded at their next login.
    PASSWORD_HASH: Literal["bcrypt", "argon2id"] = "bcrypt"
    BCRYPT_ROUNDS: int = Field(12, ge=4, le=31)
    # argon2id's cost: RFC 9106 §4's second recommended option (t=3, 64 MiB, 4 lanes).
    ARGON2_TIME_COST: int = Field(3, ge=1, le=100)
    ARGON2_MEMORY_COST: int = Field(65_536, ge=8, le=4_194_304)  # KiB, at least 8 per lane
    ARGON2_PARALLELISM: int = Field(4, ge=1, le=64)
    PASSWORD_HASH_WORKERS: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) - 1), ge=1
    )
    PASSWORD_HASH_QUEUE: int = Field(64, ge=0)  # jobs waiting beyond the running ones
    PASSWORD_MIN_LENGTH: int = Field(8, ge=1, le=72)
    # "hibp": a new password is also looked up in Have I Been Pwned's range API (k-anonymity:
    # 5 hex characters of its SHA-1 leave the service); a timeout or an error lets it through.
    PASSWORD_BREACH_CHECK: Literal["off", "hibp"] = "off"
    HIBP_RANGE_URL: str = "https://api.pwnedpasswords.com/range/"
    HIBP_TIMEOUT_SECONDS: float = Field(2.0, gt=0, le=30)
    USERS_OPEN_REGISTRATION: bool = True
    REQUIRE_EMAIL_VERIFICATION: bool = False

    RATE_LIMIT_ENABLED: bool = True
    RATE_LIMIT_LOGIN: str = "5/minute"
    RATE_LIMIT_REGISTER: str = "10/hour"
    RATE_LIMIT_PASSWORD_RECOVERY: str = "3/hour"
    RATE_LIMIT_LOGIN_IP: str = "30/minute"
    RATE_LIMIT_EMAIL_CHANGE: str = "5/hour"
    RATE_LIMIT_PASSWORD_RECOVERY_IP: str = "10/hour"
    RATE_LIMIT_PASSKEY_OPTIONS: str = "30/minute"
    RATE_LIMIT_FAIL_OPEN: bool = True
    MAX_FAILED_LOGINS: int = Field(5, ge=1)
    ACCOUNT_LOCKOUT_THRESHOLD: int = Field(50, ge=1)
    LOCKOUT_MINUTES: int = Field(15, ge=1)

    # The background loops of each server process (app/jobs/) and the retention janitor.
    BACKGROUND_JOBS: bool = True
    RETENTION_INTERVAL_SECONDS: int = Field(3600, ge=1)
    AUDIT_RETENTION_DAYS: int = Field(365, ge=0)  # 0 keeps audit events for ever

    RESET_TOKEN_EXPIRE_MINUTES: int = Field(60, ge=1)
    VERIFY_TOKEN_EXPIRE_HOURS: int = Field(48, ge=1)
    # Unset: mailed links open the service's own pages under PUBLIC_URL/account (auth/mails.py).
    FRONTEND_URL: str | None = None
    # The service's own public base URL: the OAuth/OIDC issuer and the base of its endpoints.
    PUBLIC_URL: str = "http://127.0.0.1:8000"
    # Passkeys (WebAuthn): the relying party. Unset, each is derived from PUBLIC_URL (see
    # the webauthn_* properties).
    WEBAUTHN_RP_ID: str | None = None
    WEBAUTHN_RP_NAME: str | None = None
    WEBAUTHN_ORIGINS: Annotated[list[str], NoDecode] = []
    EMAIL_BACKEND: Literal["console", "smtp"] = "console"
    SMTP_HOST: str | None = None
    SMTP_PORT: int = Field(587, ge=1, le=65535)
    SMTP_USER: str | None = None
    SMTP_PASSWORD: str | None = None
    SMTP_TLS: bool = True
    SMTP_SSL: bool = False
    SMTP_TIMEOUT: float = Field(10, gt=0)
    EMAILS_FROM_EMAIL: str = "no-reply@example.com"

    # The hosted pages' and the mails' look (ACCOUNT.md, "Branding"), checked at start.
    BRAND_NAME: str | None = None  # unset: PROJECT_NAME (brand_name)
    BRAND_LOGO_FILE: Path | None = None  # an SVG or PNG, served at /oauth/brand/logo
    BRAND_PRIMARY_COLOR: str | None = None  # "#rgb" or "#rrggbb": the buttons' colour

    METRICS_ENABLED: bool = True
    # A bearer token /metrics asks for when set; production requires it while metrics are on.
    METRICS_TOKEN: str | None = None
    LOG_FORMAT: Literal["text", "json"] = "text"
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # One INFO line per request. Off by default, as in Keycloak: the proxy in front logs
    # requests, and a Python log line costs about a tenth of an authenticated request.
    ACCESS_LOG: bool = False
    # FastAPI's own OpenTelemetry spans, metrics and logs, to the providers the process
    # configures (opentelemetry-instrument, or the SDK before the app starts).
    OPENTELEMETRY: bool = False
    MAX_BODY_BYTES: int = Field(1_048_576, ge=1024)
    HSTS_SECONDS: int = Field(31_536_000, ge=0)

    @field_validator(
        "BACKEND_CORS_ORIGINS", "JWT_EXTRA_PUBLIC_KEY_FILES", "WEBAUTHN_ORIGINS", mode="before"
    )
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """Accept a JSON list or a comma-separated string."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("BACKEND_CORS_ORIGINS", "WEBAUTHN_ORIGINS")
    @classmethod
    def _origins(cls, value: list[str], info: ValidationInfo) -> list[str]:
        """Origins as browsers send them: scheme://host[:port], nothing else. CORS also takes
        `*` (refused in production), WebAuthn Android apps' origins."""
        origins = [origin.rstrip("/") for origin in value]
        for origin in origins:
            if info.field_name == "WEBAUTHN_ORIGINS" and origin.startswith("android:apk-key-hash:"):
                continue
            if info.field_name == "BACKEND_CORS_ORIGINS" and origin == "*":
                continue  # any origin, without credentials: development only (see below)
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.username is not None
                or parts.path
                or parts.query
                or parts.fragment
                or any(ch.isspace() for ch in origin)
            ):
                raise ValueError(f"{origin[:64]!r} is not an origin (scheme://host[:port])")
            try:
                parts.port  # noqa: B018  (a port out of range raises here)
            except ValueError:
                raise ValueError(f"{origin[:64]!r} has a bad port") from None
        return origins

    @field_validator(
        "RATE_LIMIT_LOGIN",
        "RATE_LIMIT_REGISTER",
        "RATE_LIMIT_PASSWORD_RECOVERY",
        "RATE_LIMIT_LOGIN_IP",
        "RATE_LIMIT_EMAIL_CHANGE",
        "RATE_LIMIT_PASSWORD_RECOVERY_IP",
        "RATE_LIMIT_PASSKEY_OPTIONS",
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        """A rate the `limits` library reads ("30/minute"): refused at start, not at the first
        request it would limit."""
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError('must be a rate such as "30/minute"') from None
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str) -> str:
        """Route plain PostgreSQL URLs to psycopg 3; refuse what SQLAlchemy cannot open."""
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value.removeprefix(prefix)
        if not value.startswith(("sqlite://", "postgresql+psycopg://")):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value or None

    @field_validator("BRAND_NAME")
    @classmethod
    def _brand_name(cls, value: str | None) -> str | None:
        text = (value or "").strip()
        if len(text) > 100 or any(ord(char) < 0x20 for char in text):
            raise ValueError("must be a name of at most 100 characters on one line")
        return text or None

    @field_validator("BRAND_PRIMARY_COLOR")
    @classmethod
    def _brand_color(cls, value: str | None) -> str | None:
        """A CSS hex colour, kept as #rrggbb."""
        if not value:
            return None
        if not HEX_COLOR.fullmatch(value):
            raise ValueError(f"{value[:32]!r} is not a CSS hex colour (#rgb or #rrggbb)")
        digits = value[1:].lower()
        return "#" + ("".join(2 * digit for digit in digits) if len(digits) == 3 else digits)

    @field_validator("BRAND_LOGO_FILE", mode="before")
    @classmethod
    def _no_logo(cls, value: Any) -> Any:
        return value or None  # empty: no logo

    @field_validator("BRAND_LOGO_FILE")
    @classmethod
    def _brand_logo(cls, value: Path | None) -> Path | None:
        if value is not None:
            logo_type(value)
        return value

    @field_validator("METRICS_TOKEN")
    @classmethod
    def _metrics_token(cls, value: str | None) -> str | None:
        return value or None  # empty: no token (never a token that an empty bearer matches)

    @field_validator("FRONTEND_URL", mode="before")
    @classmethod
    def _no_frontend(cls, value: object) -> object:
        return value or None  # empty: unset (the hosted pages)

    @field_validator("FRONTEND_URL", "PUBLIC_URL")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        """A base URL: of the links in mails (FRONTEND_URL), of the service (PUBLIC_URL)."""
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or "?" in value or "#" in value:
            raise ValueError("must be an http:// or https:// URL without query or fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _argon2_lanes(self) -> "Settings":
        if self.ARGON2_MEMORY_COST < 8 * self.ARGON2_PARALLELISM:
            raise ValueError(
                "ARGON2_MEMORY_COST must be at least 8 KiB per lane (ARGON2_PARALLELISM)"
            )
        return self

    @model_validator(mode="after")
    def _smtp(self) -> "Settings":
        if self.EMAIL_BACKEND == "smtp" and not self.SMTP_HOST:
            raise ValueError("SMTP_HOST is required for EMAIL_BACKEND=smtp")
        return self

    @model_validator(mode="after")
    def _secret_key(self) -> "Settings":
        if self.ALGORITHM != "HS256" and self.JWT_PRIVATE_KEY_FILE is None:
            raise ValueError(f"JWT_PRIVATE_KEY_FILE is required for ALGORITHM={self.ALGORITHM}")
        if self.ENVIRONMENT is Environment.PRODUCTION:
            if (
                not self.SECRET_KEY
                or len(self.SECRET_KEY.encode()) < MIN_SECRET_BYTES
                or estimated_entropy_bits(self.SECRET_KEY) < MIN_SECRET_BITS
            ):
                raise ValueError(
                    f"SECRET_KEY must be set to at least {MIN_SECRET_BYTES} bytes and"
                    f" {MIN_SECRET_BITS} bits of entropy in production"
                    " (generate one with: openssl rand -hex 32)"
                )
        elif not self.SECRET_KEY:
            self.SECRET_KEY = _local_secret(self.SECRET_KEY_FILE)
        return self

    @model_validator(mode="after")
    def _production(self) -> "Settings":
        """What production refuses to start with, beyond the signing key."""
        if self.ENVIRONMENT is not Environment.PRODUCTION:
            return self
        if "*" in self.BACKEND_CORS_ORIGINS:
            raise ValueError("BACKEND_CORS_ORIGINS must not contain * in production")
        if self.BCRYPT_ROUNDS < MIN_PRODUCTION_BCRYPT_ROUNDS:
            raise ValueError(
                f"BCRYPT_ROUNDS must be at least {MIN_PRODUCTION_BCRYPT_ROUNDS} in production"
            )
        if (
            self.PASSWORD_HASH == "argon2id"
            and self.ARGON2_MEMORY_COST < MIN_PRODUCTION_ARGON2_MEMORY_KIB
        ):
            raise ValueError(
                f"ARGON2_MEMORY_COST must be at least {MIN_PRODUCTION_ARGON2_MEMORY_KIB} (KiB)"
                " in production"
            )
        for name in ("PUBLIC_URL", "FRONTEND_URL"):
            url = getattr(self, name)
            if url is not None and is_loopback_url(url):
                raise ValueError(f"{name} must not point at localhost in production")
        if self.METRICS_ENABLED and (
            not self.METRICS_TOKEN or len(self.METRICS_TOKEN.encode()) < MIN_METRICS_TOKEN_BYTES
        ):
            raise ValueError(
                f"METRICS_TOKEN of at least {MIN_METRICS_TOKEN_BYTES} bytes is required in"
                " production while METRICS_ENABLED (or set METRICS_ENABLED=false)"
            )
        return self

    @property
    def brand_name(self) -> str:
        return self.BRAND_NAME or self.PROJECT_NAME

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")

    @property
    def webauthn_rp_id(self) -> str:
        """WEBAUTHN_RP_ID, or the host of PUBLIC_URL; a loopback IP address becomes
        `localhost`, since browsers take no IP address as a relying party ID."""
        if self.WEBAUTHN_RP_ID:
            return self.WEBAUTHN_RP_ID
        host = urlsplit(self.PUBLIC_URL).hostname or "localhost"
        return "localhost" if is_loopback_url(self.PUBLIC_URL) else host

    @property
    def webauthn_rp_name(self) -> str:
        return self.WEBAUTHN_RP_NAME or self.PROJECT_NAME

    @property
    def webauthn_origins(self) -> list[str]:
        """WEBAUTHN_ORIGINS, or the origin of PUBLIC_URL (and its `localhost` twin when it is
        a loopback address: open the service at http://localhost:PORT to use passkeys)."""
        if self.WEBAUTHN_ORIGINS:
            return self.WEBAUTHN_ORIGINS
        url = urlsplit(self.PUBLIC_URL)
        origins = [f"{url.scheme}://{url.netloc}"]
        if is_loopback_url(self.PUBLIC_URL):
            port = f":{url.port}" if url.port else ""
            origins.append(f"{url.scheme}://localhost{port}")
        return list(dict.fromkeys(origins))


def logo_type(path: Path) -> str:
    """The media type of a logo file, `image/png` or `image/svg+xml`, told by its first bytes
    and agreeing with its extension; ValueError naming what is wrong (missing, too large, of
    another type, an SVG with a script)."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ValueError(f"{path} is not a file")
        with path.open("rb") as handle:
            head = handle.read(MAX_LOGO_BYTES + 1)
    except OSError as error:
        raise ValueError(f"{path}: {error.strerror or error}") from None
    if size > MAX_LOGO_BYTES or len(head) > MAX_LOGO_BYTES:
        raise ValueError(f"{path} is larger than {MAX_LOGO_BYTES // 1024} KiB")
    suffix = path.suffix.lower()
    if suffix == ".png" and head.startswith(PNG_SIGNATURE):
        return "image/png"
    if suffix == ".svg" and not head.startswith(PNG_SIGNATURE):
        try:
            text = head.decode("utf-8-sig").lower()
        except UnicodeDecodeError:
            text = ""
        if "<svg" in text:
            if "<script" in text:
                raise ValueError(f"{path} holds a script: a logo may not")
            return "image/svg+xml"
    raise ValueError(f"{path} is not a PNG (.png) or SVG (.svg) image")


def estimated_entropy_bits(secret: str) -> float:
    """A conservative estimate of the entropy of `secret`, in bits.

    Only the shortest unit that the secret repeats counts (`abab...` is `ab`); that unit
    scores its length times the Shannon entropy of its characters or of the steps between
    neighbours, whichever is lower (so `aaaa...`, `abab...`, `0123456789...` and
    `abcdef...` score low). The output of `openssl rand -hex 32` scores about 240."""
    unit = secret[: _period(secret)]
    steps = [ord(b) - ord(a) for a, b in pairwise(unit)]
    return len(unit) * min(_shannon(unit), _shannon(steps))


def _shannon(symbols: Sequence[object]) -> float:
    """Shannon entropy, in bits per symbol, of the symbols' own frequencies."""
    if not symbols:
        return 0.0
    total = len(symbols)
    return -sum(n / total * math.log2(n / total) for n in Counter(symbols).values())


def _period(text: str) -> int:
    """The shortest p such that text[i] == text[i - p] for every i >= p (KMP's prefix table)."""
    prefix = [0] * len(text)
    for i in range(1, len(text)):
        k = prefix[i - 1]
        while k and text[i] != text[k]:
            k = prefix[k - 1]
        prefix[i] = k + (text[i] == text[k])
    return len(text) - (prefix[-1] if text else 0)


def is_loopback_url(url: str) -> bool:
    """Whether `url` names this machine: localhost (or a name under .localhost), 127.0.0.0/8,
    ::1 (or ::ffff:127.x), or the unspecified address."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _local_secret(path: Path) -> str:
    """Read the development secret, creating it once (mode 0600) if it does not exist.

    It is written aside and linked into place, so a process starting at the same moment never
    reads it half-written; an empty or short file is refused, never used as a signing key.
    """
    try:
        if not path.exists():
            _create_secret(path)
        secret = path.read_text().strip()
    except OSError as error:
        raise ValueError(f"SECRET_KEY_FILE {path}: {error.strerror or error}") from None
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(
            f"SECRET_KEY_FILE {path} holds fewer than {MIN_SECRET_BYTES} bytes;"
            " delete it to generate a new secret, or set SECRET_KEY"
        )
    return secret


def _create_secret(path: Path) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(MIN_SECRET_BYTES) + "\n")
        os.link(temp, path)
    except FileExistsError:
        pass  # another process linked its secret first: use that one
    finally:
        temp.unlink(missing_ok=True)


class SettingsError(SystemExit):
    """Start-up refused: one line naming the setting, no traceback."""


def describe(error: ValidationError) -> str:
    first = error.errors()[0]
    name = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"Invalid setting {name}: {message}" if name else f"Invalid settings: {message}"


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(describe(error)) from None
    except (json.JSONDecodeError, OSError) as error:
        raise SettingsError(f"Invalid settings: {error}") from None
