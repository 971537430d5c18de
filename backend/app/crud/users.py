"""User helpers: `fn(session, *, ...)`, no HTTP. Writers are steps: they write with their audit
event, and the transaction that runs them (db.transaction) commits."""

import uuid
from collections.abc import Sequence
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
    or_,
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
from app.errors import EmailTaken, LastAdmin, NotFound
from app.models.action_token import MFA_CHALLENGES, TokenPurpose
from app.models.common import PageCursor, UTCDateTime, utcnow
from app.models.user import (
    ROLE_TYPE,
    USER_READ_COLUMNS,
    USER_READ_FIELDS,
    User,
    normalize_email,
)
from app.reads import PreparedRead


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
    except IntegrityError:
        raise EmailTaken() from None
    audit.record(session, event, actor=actor, subject_id=user.id, role=role.value)
    return user


class UserPage(NamedTuple):
    items: list[Any]  # dicts of UserRead's fields and their values, typed: see list_users
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
    (reads.PreparedRead): no ORM object and no model per row, since a page serializes them
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
    """list_users on a driver connection of `bind`'s database (reads.read_connection's, say)."""
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
    """Apply validated field changes (full_name, role, is_active, and an email set directly by
    an admin) and a new hash set by an admin."""
    changes = {k: v for k, v in changes.items() if getattr(user, k) != v}
    removes_admin = _is_active_admin(user) and (
        changes.get("role", Role.ADMIN) != Role.ADMIN or changes.get("is_active") is False
    )
    try:
        if removes_admin:
            _ensure_another_admin(session, user)
        old_role = user.role
        email = changes.pop("email", None)
        if isinstance(email, str):
            set_email(session, user_id=user.id, email=email)
        if hashed_password is not None:
            replace_password(session, user_id=user.id, new_hash=hashed_password)
            end_credentials(session, user_id=user.id)
        for name, value in changes.items():
            setattr(user, name, value)
        if changes.get("is_active") is False:
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
        fields = sorted(set(changes) - {"role"})
        fields += ["password"] if hashed_password else []
        if email:
            audit.record(session, "user.email_changed", actor=actor, subject_id=user.id)
        if fields:
            audit.record(session, "user.updated", actor=actor, subject_id=user.id, fields=fields)
    except IntegrityError:
        raise EmailTaken() from None
    session.refresh(user)
    return user


def set_email(session: Session, *, user_id: uuid.UUID, email: str) -> None:
    """Move an account to another address, unverified (an admin's direct change). One
    statement names every column it changes, so no concurrent verification of the old
    address can leave the new one verified; links mailed to the old address stop working
    (they are bound to it). The caller commits; a taken address raises IntegrityError."""
    session.exec(
        update(User)
        .where(col(User.id) == user_id)
        .values(email=normalize_email(email), is_verified=False, pending_email=None)
        .execution_options(synchronize_session=False)
    )


def remember_locale(session: Session, *, user_id: uuid.UUID, locale: str) -> None:
    """Keep the language of a sign-in (written only when it changes; `updated_at` is the
    profile's, and stays)."""
    session.exec(
        update(User)
        .where(
            col(User.id) == user_id,
            or_(col(User.locale).is_(None), col(User.locale) != locale),
        )
        .values(locale=locale, updated_at=User.updated_at)
        .execution_options(synchronize_session=False)
    )


def request_email(session: Session, *, user_id: uuid.UUID, email: str, version: int) -> bool:
    """Record a pending address, while the credentials that were checked are current. The
    caller commits; False if they changed meanwhile."""
    result = session.exec(
        update(User)
        .where(col(User.id) == user_id, col(User.credentials_version) == version)
        .values(pending_email=normalize_email(email), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def confirm_email(session: Session, *, user_id: uuid.UUID, email: str, pending: bool) -> bool:
    """Mark `email` verified: the account's address if it still is `email`, or (`pending`)
    its pending address `email`, which it then moves to. False if that is no longer so. The
    caller commits; a pending address taken meanwhile raises IntegrityError."""
    email = normalize_email(email)
    if pending:
        condition, values = (
            col(User.pending_email) == email,
            {"email": email, "pending_email": None},
        )
    else:
        condition, values = col(User.email) == email, {}
    result = session.exec(
        update(User)
        .where(col(User.id) == user_id, condition)
        .values(is_verified=True, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def claim_credentials(session: Session, *, user_id: uuid.UUID, version: int) -> bool:
    """Lock the user's row if its credentials are still at `version`: False if a reset, a
    change or an admin-set password came between. The lock is held until the caller commits,
    so a credential change waits for this transaction, then ends the sessions it opened."""
    result = session.exec(
        update(User)
        .where(col(User.id) == user_id, col(User.credentials_version) == version)
        .values(credentials_version=col(User.credentials_version), updated_at=col(User.updated_at))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def upgrade_hash(session: Session, *, user_id: uuid.UUID, verified: str, new_hash: str) -> None:
    """Store a re-hash at the configured cost only over the hash that was verified: never
    over a newer password. The caller commits."""
    session.exec(
        update(User)
        .where(col(User.id) == user_id, col(User.hashed_password) == verified)
        .values(hashed_password=new_hash, updated_at=col(User.updated_at))
        .execution_options(synchronize_session=False)
    )


def replace_password(
    session: Session,
    *,
    user_id: uuid.UUID,
    new_hash: str,
    version: int | None = None,
    where: Sequence[ColumnElement[bool]] = (),
    **values: object,
) -> bool:
    """Set a new hash and a new credentials version (only while at `version`, if given, and
    `where` holds). Every login, MFA step and upgrade that began before then fails; the
    caller then calls end_credentials, and commits."""
    conditions = [col(User.id) == user_id, *where]
    if version is not None:
        conditions.append(col(User.credentials_version) == version)
    result = session.exec(
        update(User)
        .where(*conditions)
        .values(
            hashed_password=new_hash,
            credentials_version=col(User.credentials_version) + 1,
            updated_at=utcnow(),
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def end_credentials(session: Session, *, user_id: uuid.UUID, keep: uuid.UUID | None = None) -> int:
    """After a new password: end every session (but `keep`), spend every reset link and MFA
    challenge. The number of sessions ended. The caller commits."""
    ended = sessions.revoke_all(session, user_id, keep=keep)
    action_tokens.spend_all(
        session, user_id=user_id, purposes=[TokenPurpose.RESET_PASSWORD, *MFA_CHALLENGES]
    )
    return ended


def delete_user(session: Session, *, user: User, actor: Actor) -> None:
    if _is_active_admin(user):
        _ensure_another_admin(session, user)
    audit.record(session, "user.deleted", actor=actor, subject_id=user.id)
    session.delete(user)
