"""`manage resource|role|org|user roles`: the product's authorization (AUTHZ.md, "CLI").
Each command is one step of crud/ run by db.transaction, as the HTTP API runs it."""

import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table
from sqlmodel import Session, col, select

from app.crud import authz, organizations
from app.db import transaction
from app.models.authz import (
    ProductRole,
    ResourceCreate,
    RoleCreate,
    RolePermissionRef,
)
from app.models.common import CursorPage, PageCursor
from app.models.organization import OrganizationCreate
from manage import CLI_ACTOR, db_session, fail, find_user

resource_cli = typer.Typer(
    help="API resources and their permissions.", no_args_is_help=True, rich_markup_mode=None
)
role_cli = typer.Typer(help="The product's roles.", no_args_is_help=True, rich_markup_mode=None)
org_cli = typer.Typer(
    help="Organizations and their members.", no_args_is_help=True, rich_markup_mode=None
)
user_cli = typer.Typer(help="A user's product roles.", no_args_is_help=True, rich_markup_mode=None)
M = TypeVar("M", bound=BaseModel)
Item = TypeVar("Item")


def _valid(model: type[M], **fields: object) -> M:
    """The model, or one line naming what is wrong."""
    try:
        return model(**fields)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        fail(f"{where}: {problem['msg']}")


def _every(
    session: Session, page_of: Callable[..., CursorPage[Item]], **query: object
) -> Iterator[Item]:
    """Every item of a cursor-paged list step, page after page, each page its own transaction."""
    after = None
    while True:
        page = transaction(page_of, session, limit=100, after=after, **query)
        yield from page.items
        if page.next_cursor is None:
            return
        after = PageCursor.decode(page.next_cursor)


def _print(table: Table) -> None:
    Console(width=200).print(table)


@resource_cli.command("create")
def resource_create(
    identifier: str,
    name: Annotated[str, typer.Option(help="A name people read.")],
    permission: Annotated[
        list[str] | None, typer.Option(help="NAME or NAME=DESCRIPTION; repeat for each.")
    ] = None,
) -> None:
    """Create an API resource (its identifier becomes the `aud` of its tokens)."""
    permissions = [
        {"name": name_, "description": description}
        for name_, _, description in (p.partition("=") for p in permission or [])
    ]
    body = _valid(ResourceCreate, identifier=identifier, name=name, permissions=permissions)
    with db_session() as session:
        created = transaction(authz.create_resource, session, body=body, actor=CLI_ACTOR)
    typer.echo(f"Created resource {created.identifier} ({created.id})")


@resource_cli.command("list")
def resource_list() -> None:
    """Print the API resources and their permissions."""
    table = Table("id", "identifier", "name", "permissions")
    with db_session() as session:
        for item in _every(session, authz.list_resources):
            names = " ".join(p.name for p in item.permissions)
            table.add_row(str(item.id), item.identifier, item.name, names)
    _print(table)


@role_cli.command(
    "create", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def role_create(
    ctx: typer.Context,
    name: str,
    description: Annotated[str, typer.Option(help="What the role is for.")] = "",
) -> None:
    """Create a role: `--permission IDENTIFIER PERMISSION`, repeated, names what it holds."""
    args, refs = list(ctx.args), []
    while args:
        if args[0] != "--permission" or len(args) < 3:
            fail("permissions are given as --permission IDENTIFIER PERMISSION")
        refs.append(_valid(RolePermissionRef, resource=args[1], name=args[2]))
        del args[:3]
    body = _valid(RoleCreate, name=name, description=description, permissions=refs)
    with db_session() as session:
        role = transaction(authz.create_role, session, body=body, actor=CLI_ACTOR)
    typer.echo(f"Created role {role.name} ({role.id})")


@role_cli.command("list")
def role_list() -> None:
    """Print the roles and their permissions."""
    table = Table("id", "name", "description", "permissions")
    with db_session() as session:
        for role in _every(session, authz.list_roles):
            held = " ".join(f"{p.resource} {p.name}" for p in role.permissions)
            table.add_row(str(role.id), role.name, role.description, held)
    _print(table)


def _role_ids(session: Session, names: list[str]) -> list[uuid.UUID]:
    ids = []
    for name in names:
        role_id = session.exec(select(ProductRole.id).where(col(ProductRole.name) == name)).first()
        if role_id is None:
            fail(f"no role named {name}")
        ids.append(role_id)
    return ids


@user_cli.command("roles")
def user_roles(
    email: str, role: Annotated[list[str] | None, typer.Argument(help="Role names.")] = None
) -> None:
    """Set a user's global roles (none given: remove them all)."""
    with db_session() as session:
        user = find_user(session, email)
        role_ids = _role_ids(session, role or [])
        held = transaction(
            authz.set_user_roles, session, user_id=user.id, role_ids=role_ids, actor=CLI_ACTOR
        )
    typer.echo(f"{email}: {', '.join(r.name for r in held) or 'no roles'}")


@org_cli.command("create")
def org_create(
    name: str,
    slug: Annotated[str | None, typer.Option(help="Derived from the name if absent.")] = None,
) -> None:
    """Create an organization."""
    body = _valid(OrganizationCreate, name=name, slug=slug)
    with db_session() as session:
        created = transaction(organizations.create, session, body=body, actor=CLI_ACTOR)
    typer.echo(f"Created organization {created.slug} ({created.id})")


@org_cli.command("list")
def org_list() -> None:
    """Print the organizations."""
    table = Table("id", "slug", "name", "created")
    with db_session() as session:
        for org in _every(session, organizations.list_page):
            created = org.created_at.strftime("%Y-%m-%d %H:%M")
            table.add_row(str(org.id), org.slug, org.name, created)
    _print(table)


@org_cli.command("add-member")
def org_add_member(
    org: Annotated[str, typer.Argument(help="The organization's id or slug.")],
    email: str,
    role: Annotated[list[str] | None, typer.Option(help="A role name; repeat for each.")] = None,
) -> None:
    """Add a user to an organization (or set their roles there)."""
    with db_session() as session:
        organization = organizations.get(session, org)
        user = find_user(session, email)
        roles = authz.role_refs(session, _role_ids(session, role or []))
        transaction(
            organizations.set_member,
            session,
            organization_id=organization.id,
            user_id=user.id,
            roles=roles,
            actor=CLI_ACTOR,
        )
    names = ", ".join(r.name for r in roles) or "no roles"
    typer.echo(f"{email} is a member of {organization.slug}: {names}")


@org_cli.command("members")
def org_members(org: Annotated[str, typer.Argument(help="The organization's id or slug.")]) -> None:
    """Print an organization's members and their roles there."""
    table = Table("user id", "email", "name", "roles")
    with db_session() as session:
        organization = organizations.get(session, org)
        members = _every(session, organizations.members_page, organization_id=organization.id)
        for member in members:
            roles = ", ".join(r.name for r in member.roles)
            table.add_row(str(member.user_id), member.email, member.full_name or "", roles)
    _print(table)
