"""User helpers: `fn(session, *, ...)`, no HTTP. Writers commit, with their audit event."""

import uuid

from sqlalchemy import func, update
from sqlalchemy import select as select_columns
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.core.permissions import Role
from app.crud import action_tokens, audit, sessions
from app.crud.audit import Actor
from app.errors import EmailTaken, LastAdmin, NotFound
from app.models.action_token import TokenPurpose
from app.models.common import utcnow
from app.models.user import USER_READ_COLUMNS, User, UserRead, normalize_email, user_read


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    return user


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == normalize_email(email))).first()


def email_exists(session: Session, email: str) -> bool:
    return get_user_by_email(session, email) is not None


def create_user(
    session: Session,
    *,
    email: str,
    hashed_password: str,
    full_name: str | None = None,
    role: Role = Role.USER,
    is_verified: bool = False,
    actor: Actor,
    event: str = "user.registered",
) -> User:
    user = User(
        email=normalize_email(email),
        hashed_password=hashed_password,
        full_name=full_name,
        role=role,
        is_verified=is_verified,
    )
    session.add(user)
    try:
        session.flush()
        audit.record(session, event, actor=actor, subject_id=user.id, role=role.value)
        session.commit()
    except IntegrityError:
        session.rollback()
        raise EmailTaken() from None
    return user


def list_users(
    session: Session,
    *,
    skip: int,
    limit: int,
    role: Role | None = None,
    is_active: bool | None = None,
    q: str | None = None,
) -> tuple[list[UserRead], int]:
    """A page of users (their UserRead columns as plain rows, not ORM objects) and the total."""
    conditions = []
    if role is not None:
        conditions.append(col(User.role) == role)
    if is_active is not None:
        conditions.append(col(User.is_active) == is_active)
    if q:
        conditions.append(
            col(User.email).icontains(q, autoescape=True)
            | col(User.full_name).icontains(q, autoescape=True)
        )
    total = session.exec(select(func.count()).select_from(User).where(*conditions)).one()
    rows = session.exec(
        select_columns(*USER_READ_COLUMNS)
        .where(*conditions)
        .order_by(col(User.created_at), col(User.id))
        .offset(skip)
        .limit(limit)
    ).all()
    return [user_read(row) for row in rows], total


def _ensure_another_admin(session: Session, user: User) -> None:
    """Refuse to remove the last active admin. The admin rows are locked first (FOR UPDATE on
    PostgreSQL; on SQLite a first write takes the database's write lock), so two admins
    demoting each other at once cannot both succeed."""
    if session.get_bind().dialect.name == "sqlite":
        session.exec(update(User).where(col(User.id) == user.id).values(role=col(User.role)))
    admin_ids = session.exec(
        select(User.id)
        .where(col(User.role) == Role.ADMIN, col(User.is_active).is_(True))
        .with_for_update()
    ).all()
    if not any(admin_id != user.id for admin_id in admin_ids):
        raise LastAdmin()


def _is_active_admin(user: User) -> bool:
    return user.role == Role.ADMIN and user.is_active


def update_user(
    session: Session,
    *,
    user: User,
    changes: dict[str, object],
    actor: Actor,
    hashed_password: str | None = None,
) -> User:
    """Apply validated field changes (email, full_name, role, is_active) and a new hash."""
    changes = {k: v for k, v in changes.items() if getattr(user, k) != v}
    removes_admin = _is_active_admin(user) and (
        changes.get("role", Role.ADMIN) != Role.ADMIN or changes.get("is_active") is False
    )
    try:
        if removes_admin:
            _ensure_another_admin(session, user)
        old_role = user.role
        for name, value in changes.items():
            setattr(user, name, value)
        if "email" in changes:
            user.is_verified = False
            # Links mailed to the old address must not act on the new one.
            action_tokens.spend_all(
                session,
                user_id=user.id,
                purposes=[TokenPurpose.RESET_PASSWORD, TokenPurpose.VERIFY_EMAIL],
            )
        if hashed_password is not None:
            user.hashed_password = hashed_password
        if hashed_password is not None or changes.get("is_active") is False:
            sessions.revoke_all(session, user.id)
        user.updated_at = utcnow()
        session.add(user)
        session.flush()
        if "role" in changes:
            audit.record(
                session,
                "user.role_changed",
                actor=actor,
                subject_id=user.id,
                old=str(old_role),
                new=str(user.role),
            )
        fields = sorted(set(changes) - {"role"} | ({"password"} if hashed_password else set()))
        if fields:
            audit.record(session, "user.updated", actor=actor, subject_id=user.id, fields=fields)
        session.commit()
    except IntegrityError:
        session.rollback()
        raise EmailTaken() from None
    except LastAdmin:
        session.rollback()
        raise
    return user


def delete_user(session: Session, *, user: User, actor: Actor) -> None:
    try:
        if _is_active_admin(user):
            _ensure_another_admin(session, user)
        audit.record(session, "user.deleted", actor=actor, subject_id=user.id)
        session.delete(user)
        session.commit()
    except LastAdmin:
        session.rollback()
        raise
