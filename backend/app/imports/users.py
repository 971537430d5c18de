"""The import's steps: prepared lines (lines.py) written as users, their product roles and
organization memberships, each line `created`, `updated`, `skipped` or `error`.

A batch of lines is one transaction (`import_batch`): each line is checked by reads before it
writes, so a line that cannot be imported writes nothing. A batch that a concurrent writer
breaks (the same email created meanwhile) is run again line by line (`import_line`, one
transaction each), so no line is ever half imported and the others still import. A second run
of the same file finds every user again, by `external_id` or by email, and changes nothing.
The stored hash never leaves: not in a result, an audit event or a log.
"""

import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.crud import audit, authz, organizations, users
from app.crud.audit import Actor
from app.db import transaction
from app.errors import DomainError, EmailTaken
from app.imports.lines import LineResult, Prepared, Status
from app.models.authz import ProductRole, RoleRef
from app.models.organization import MembershipRole, Organization
from app.models.user import User

IMPORTED = "user.imported"


@dataclass(frozen=True, slots=True)
class Names:
    """The product roles and organizations a batch names, read once for the batch."""

    roles: dict[str, RoleRef]
    organizations: dict[str, uuid.UUID]

    @classmethod
    def read(cls, session: Session, batch: list[Prepared]) -> "Names":
        role_names = {name for p in batch for name in p.roles}
        role_names |= {name for p in batch for roles in p.organizations.values() for name in roles}
        slugs = {slug for p in batch for slug in p.organizations}
        roles = session.exec(
            select(ProductRole.id, ProductRole.name).where(col(ProductRole.name).in_(role_names))
        ).all()
        orgs = session.exec(
            select(Organization.id, Organization.slug).where(col(Organization.slug).in_(slugs))
        ).all()
        return cls(
            roles={name: RoleRef(id=role_id, name=name) for role_id, name in roles},
            organizations={slug: org_id for org_id, slug in orgs},
        )

    def unknown(self, p: Prepared) -> str | None:
        """Why the line names something that does not exist, or None."""
        for slug, roles in p.organizations.items():
            if slug not in self.organizations:
                return f"unknown organization: {slug}"
            p_roles = [name for name in roles if name not in self.roles]
            if p_roles:
                return f"unknown role: {p_roles[0]}"
        missing = [name for name in p.roles if name not in self.roles]
        return f"unknown role: {missing[0]}" if missing else None


@dataclass(frozen=True, slots=True)
class Known:
    """The accounts a batch's lines may be, by email and by external_id: read with two
    queries for the batch, and kept up to date as the batch creates accounts."""

    by_email: dict[str, User]
    by_external_id: dict[str, User]

    @classmethod
    def read(cls, session: Session, batch: list[Prepared]) -> "Known":
        emails = [p.email for p in batch]  # normalised by the line's validation
        external_ids = [p.external_id for p in batch if p.external_id is not None]
        found = session.exec(select(User).where(col(User.email).in_(emails))).all()
        by_id = session.exec(select(User).where(col(User.external_id).in_(external_ids))).all()
        return cls(
            by_email={user.email: user for user in found},
            by_external_id={str(user.external_id): user for user in by_id},
        )

    def add(self, user: User) -> None:
        self.by_email[user.email] = user
        if user.external_id is not None:
            self.by_external_id[user.external_id] = user


class LineConflict(DomainError):
    """A line whose email and external_id name two different accounts."""


def _match(known: Known, p: Prepared) -> User | None:
    """The account the line is, by external_id first, then by email; LineConflict when the
    two name different accounts."""
    by_email = known.by_email.get(p.email)
    if p.external_id is None:
        return by_email
    by_id = known.by_external_id.get(p.external_id)
    if by_id is not None and by_email is not None and by_id.id != by_email.id:
        raise LineConflict("external_id and email belong to two different accounts")
    if by_id is None and by_email is not None and by_email.external_id not in {None, p.external_id}:
        raise LineConflict("email belongs to an account with another external_id")
    return by_id or by_email


def _create(session: Session, p: Prepared, names: Names, actor: Actor) -> User:
    """A new account, as users.create_user makes one (audited), with what the line adds. It
    is flushed with the batch: a clash with an account created meanwhile breaks the batch,
    which is then run line by line."""
    user = User(
        email=p.email,
        hashed_password=p.hashed_password,
        full_name=p.full_name,
        role=p.role,
        is_verified=p.is_verified,
        is_active=p.is_active,
        external_id=p.external_id,
        mfa_secret=p.mfa_secret,
        mfa_enabled=p.mfa_secret is not None,
    )
    if p.created_at is not None:
        user.created_at = p.created_at
    session.add(user)
    audit.record(session, IMPORTED, actor=actor, subject_id=user.id, role=p.role.value)
    _assign(session, user.id, p, names, actor, created=True)
    return user


def _member_roles(session: Session, membership_id: uuid.UUID) -> list[str]:
    return sorted(
        session.exec(
            select(ProductRole.name)
            .join(MembershipRole, col(MembershipRole.role_id) == col(ProductRole.id))
            .where(col(MembershipRole.membership_id) == membership_id)
        ).all()
    )


def _assign(
    session: Session, user_id: uuid.UUID, p: Prepared, names: Names, actor: Actor, *, created: bool
) -> bool:
    """The line's global roles and memberships, where they differ from the account's; whether
    anything changed."""
    changed = False
    if "roles" in p.given:
        held = [] if created else [r.name for r in authz.user_roles(session, user_id)]
        if held != p.roles:
            role_ids = [names.roles[name].id for name in p.roles]
            authz.set_user_roles(session, user_id=user_id, role_ids=role_ids, actor=actor)
            changed = True
    for slug, role_names in p.organizations.items():
        org_id = names.organizations[slug]
        row = None if created else organizations.membership(session, org_id, user_id)
        if row is not None and _member_roles(session, row.id) == role_names:
            continue
        roles = [names.roles[name] for name in role_names]
        organizations.set_member(
            session, organization_id=org_id, user_id=user_id, roles=roles, actor=actor
        )
        changed = True
    return changed


# What --update may change on an account found again: the profile, the flags and the ids.
# Credentials (password, hash, TOTP secret) are taken only when the account is created: an
# account's password may have been changed, or upgraded at a login, since the first import.
UPDATABLE = ("full_name", "role", "is_active", "is_verified", "external_id")


def _update(session: Session, user: User, p: Prepared, names: Names, actor: Actor) -> bool:
    changes: dict[str, object] = {
        name: getattr(p, name)
        for name in UPDATABLE
        if name in p.given and getattr(user, name) != getattr(p, name)
    }
    if p.external_id is not None and user.email != p.email:  # found by its external_id
        changes["email"] = p.email
        if "is_verified" in p.given:
            changes["is_verified"] = p.is_verified  # set_email leaves the new address unverified
    if changes:
        users.update_user(session, user=user, changes=changes, actor=actor)
    return _assign(session, user.id, p, names, actor, created=False) or bool(changes)


def _one(
    session: Session, p: Prepared, names: Names, known: Known, *, update: bool, actor: Actor
) -> LineResult:
    def result(status: Status, reason: str | None = None) -> LineResult:
        return LineResult(line=p.line, email=p.email, status=status, reason=reason)

    if (unknown := names.unknown(p)) is not None:
        return result("error", unknown)
    try:
        existing = _match(known, p)
    except LineConflict as conflict:
        return result("error", conflict.detail)
    if existing is None:
        known.add(_create(session, p, names, actor))
        return result("created")
    if not update:
        return result("skipped", "already imported: the email or external_id exists")
    if _update(session, existing, p, names, actor):
        known.add(existing)
        return result("updated")
    return result("skipped", "unchanged")


def import_batch(
    session: Session, batch: list[Prepared], *, update: bool, actor: Actor
) -> list[LineResult]:
    """Write a batch of prepared lines in the caller's transaction. A domain refusal of a
    line (the last admin demoted) ends the batch: the caller runs it again line by line."""
    names, known = Names.read(session, batch), Known.read(session, batch)
    results = [_one(session, p, names, known, update=update, actor=actor) for p in batch]
    session.flush()  # a clash with a concurrent writer shows here, inside the transaction
    return results


class DryRun(Exception):
    """Raised at the end of a dry run's batch, so its transaction rolls back."""

    def __init__(self, results: list[LineResult]) -> None:
        super().__init__("dry run")
        self.results = results


def _dry_batch(
    session: Session, batch: list[Prepared], *, update: bool, actor: Actor
) -> list[LineResult]:
    raise DryRun(import_batch(session, batch, update=update, actor=actor))


def write(
    session: Session, batch: list[Prepared], *, update: bool, actor: Actor, dry_run: bool = False
) -> list[LineResult]:
    """A batch as one transaction; when a line's refusal (the last admin demoted) or a
    concurrent writer (the same email created meanwhile) breaks it, line by line, each its own
    transaction. A dry run writes nothing and answers what a run would."""
    step = _dry_batch if dry_run else import_batch
    try:
        return transaction(step, session, batch, update=update, actor=actor)
    except DryRun as done:
        return done.results
    except (DomainError, IntegrityError):
        return [_alone(session, p, update=update, actor=actor, dry_run=dry_run) for p in batch]


def _alone(
    session: Session, p: Prepared, *, update: bool, actor: Actor, dry_run: bool
) -> LineResult:
    """One line, its own transaction; run once more when a concurrent writer created its
    account meanwhile (the second run finds it)."""
    step = _dry_batch if dry_run else import_batch
    for attempt in (1, 2):
        try:
            return transaction(step, session, [p], update=update, actor=actor)[0]
        except DryRun as done:
            return done.results[0]
        except (EmailTaken, IntegrityError) as error:
            if attempt == 2:
                reason = getattr(error, "detail", "conflicts with another account")
                return LineResult(line=p.line, email=p.email, status="error", reason=reason)
        except DomainError as refusal:
            return LineResult(line=p.line, email=p.email, status="error", reason=refusal.detail)
    raise AssertionError("unreachable")
