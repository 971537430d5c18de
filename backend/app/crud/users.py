"""User helpers: `fn(session, *, ...)`, no HTTP. Writers commit, with their audit event."""

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, update
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
        session.commit()
    except IntegrityError:
        session.rollback()
        raise EmailTaken() from None
    except LastAdmin:
        session.rollback()
        raise
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
        session, user_id=user_id, purposes=[TokenPurpose.RESET_PASSWORD, TokenPurpose.MFA_LOGIN]
    )
    return ended


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
