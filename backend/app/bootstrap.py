"""The first superuser: created at start when no active admin exists."""

import secrets

from sqlmodel import Session, col, select

from app.auth.new_password import new_password_hash_sync
from app.core.config import Environment, get_settings
from app.core.permissions import Role
from app.crud import users
from app.crud.audit import SYSTEM
from app.errors import DomainError, WeakPassword
from app.models.user import User


class BootstrapRefused(DomainError):
    """Start-up cannot create the first admin; the message says what to set."""


def ensure_first_superuser(session: Session) -> str | None:
    """Create the first admin if there is no active admin. Returns a generated password, if any."""
    settings = get_settings()
    has_admin = session.exec(
        select(User.id).where(col(User.role) == Role.ADMIN, col(User.is_active).is_(True))
    ).first()
    if has_admin is not None:
        return None
    email = settings.FIRST_SUPERUSER_EMAIL
    if users.get_user_by_email(session, email) is not None:
        raise BootstrapRefused(
            f"FIRST_SUPERUSER_EMAIL {email} belongs to an existing account that is not an active"
            " admin; promote it with `manage set-role` or choose another email"
        )
    password = settings.FIRST_SUPERUSER_PASSWORD
    generated = None
    if password is None:
        if settings.ENVIRONMENT is Environment.PRODUCTION:
            raise BootstrapRefused(
                "FIRST_SUPERUSER_PASSWORD must be set in production to create the first admin"
            )
        password = generated = secrets.token_urlsafe(18)
    full_name = settings.FIRST_SUPERUSER_FULL_NAME
    try:
        hashed = new_password_hash_sync(password, email=email, full_name=full_name)
    except WeakPassword as refused:
        raise BootstrapRefused(f"FIRST_SUPERUSER_PASSWORD: {refused.detail}") from None
    users.create_user(
        session,
        email=email,
        full_name=full_name,
        hashed_password=hashed,
        role=Role.ADMIN,
        is_verified=True,
        actor=SYSTEM,
        event="user.created",
    )
    return generated
