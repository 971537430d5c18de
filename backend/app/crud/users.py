"""User helpers: `fn(session, *, ...)`, no HTTP. Writers commit, with their audit event."""

import uuid
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    String,
    Uuid,
    bindparam,
    func,
    tuple_,
    update,
)
from sqlalchemy import select as select_columns
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.core.permissions import Role
from app.crud import action_tokens, audit, sessions
from app.crud.audit import Actor
from app.db import PreparedRead
from app.errors import EmailTaken, LastAdmin, NotFound
from app.models.action_token import TokenPurpose
from app.models.common import PageCursor, UTCDateTime, utcnow
from app.models.user import (
    ROLE_TYPE,
    USER_READ_COLUMNS,
    USER_READ_FIELDS,
    User,
    normalize_email,
)


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


class UserPage(NamedTuple):
    items: list[dict[str, Any]]  # UserRead's fields and their values, typed: see list_users
    total: int  # users matching the filters, on every page
    next: PageCursor | None  # where the next page starts; None on the last page


def list_users(
    session: Session,
    *,
    skip: int = 0,
    limit: int,
    role: Role | None = None,
    is_active: bool | None = None,
    q: str | None = None,
    after: PageCursor | None = None,
) -> UserPage:
    """A page of users in (created_at, id) order, the first after `after` (keyset: as cheap
    at any depth) and `skip` more, with the total matching the filters.

    Each user is a dict of UserRead's fields, with the values SQLAlchemy's types give (UUID,
    Role, aware datetimes), read through statements compiled once per combination of filters
    (db.PreparedRead): no ORM object and no model per row, since a page serializes them
    straight to JSON (api.v1.users)."""
    return read_user_page(
        session.connection().connection,
        session.get_bind(),
        skip=skip,
        limit=limit,
        role=role,
        is_active=is_active,
        q=q,
        after=after,
    )


def read_user_page(
    connection: DBAPIConnection,
    bind: Engine | Connection,
    *,
    skip: int = 0,
    limit: int,
    role: Role | None = None,
    is_active: bool | None = None,
    q: str | None = None,
    after: PageCursor | None = None,
) -> UserPage:
    """list_users on a driver connection of `bind`'s database (db.read_connection's, say)."""
    count, page = _user_list_statements(
        bind, role is not None, is_active is not None, bool(q), after is not None
    )
    params = {
        "role": role,
        "is_active": is_active,
        "pattern": f"%{_escape_like(q)}%" if q else None,
        "after_at": after and after.created_at,
        "after_id": after and after.id,
        "skip": skip,
        "limit": limit + 1,  # one more row tells whether a next page exists
    }
    counted = count.first(connection, params)
    rows = page.all(connection, params)
    items = [dict(zip(USER_READ_FIELDS, row, strict=True)) for row in rows[:limit]]
    last = items[-1] if len(rows) > limit else None
    return UserPage(
        items=items,
        total=counted[0] if counted else 0,
        next=PageCursor(last["created_at"], last["id"]) if last else None,
    )


def _escape_like(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


@lru_cache(maxsize=32)
def _user_list_statements(
    bind: Engine | Connection, role: bool, is_active: bool, q: bool, keyset: bool
) -> tuple[PreparedRead, PreparedRead]:
    """The count and the page statement for one combination of filters, built once. The
    keyset condition is a row-value comparison, which the indexes on (created_at), (role,
    created_at, id) and (is_active, created_at, id) serve on SQLite and PostgreSQL alike."""
    conditions: list[ColumnElement[bool]] = []
    if role:
        conditions.append(col(User.role) == bindparam("role", type_=ROLE_TYPE))
    if is_active:
        conditions.append(col(User.is_active) == bindparam("is_active", type_=Boolean()))
    if q:
        pattern = func.lower(bindparam("pattern", type_=String()))
        conditions.append(
            func.lower(col(User.email)).like(pattern, escape="/")
            | func.lower(col(User.full_name)).like(pattern, escape="/")
        )
    count = select_columns(func.count()).select_from(User).where(*conditions)
    if keyset:
        after_at = bindparam("after_at", type_=UTCDateTime())
        after_id = bindparam("after_id", type_=Uuid())
        conditions.append(tuple_(col(User.created_at), col(User.id)) > tuple_(after_at, after_id))
    page = (
        select_columns(*USER_READ_COLUMNS)
        .where(*conditions)
        .order_by(col(User.created_at), col(User.id))
        .offset(bindparam("skip", type_=Integer()))
        .limit(bindparam("limit", type_=Integer()))
    )
    return PreparedRead(count, bind), PreparedRead(page, bind)


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
