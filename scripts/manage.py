"""`manage`: run the service and administer accounts from the command line.

Exit codes: 0 done, 1 refused (one line on stderr), 2 usage error.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from app.auth.new_password import new_password_hash_sync
from app.core.config import get_settings
from app.core.permissions import Role
from app.crud import users
from app.crud.audit import Actor
from app.db import transaction
from app.errors import DomainError
from app.models.client import GrantType, OrganizationUsage
from app.models.user import User

# Plain help (click's), which wraps long option names where rich's panels cut them at 80 columns.
cli = typer.Typer(
    help="Administer the authentication service.", no_args_is_help=True, rich_markup_mode=None
)
CLI_ACTOR = Actor(user_agent="manage")


class KeyPurpose(StrEnum):
    JWT = "jwt"
    OIDC = "oidc"


class KeyAlgorithm(StrEnum):
    RS256 = "RS256"
    ES256 = "ES256"


def fail(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=1)


@contextmanager
def db_session() -> Iterator[Session]:
    from app.db import get_engine

    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
        except DomainError as error:
            fail(error.detail)


def find_user(session: Session, email: str) -> User:
    user = users.get_user_by_email(session, email)
    if user is None:
        fail(f"no user with email {email}")
    return user


@cli.command()
def migrate() -> None:
    """Apply every pending database migration (alembic upgrade head)."""
    from app.migrations import startup_lock, upgrade_to_head

    get_settings()
    with startup_lock():
        upgrade_to_head()
    typer.echo("Database is at the latest migration.")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes.")] = False,
    forwarded_allow_ips: Annotated[
        str | None, typer.Option(help="Proxies trusted for X-Forwarded-For (uvicorn).")
    ] = None,
) -> None:
    """Apply migrations, ensure the first superuser, and run the service with uvicorn."""
    import uvicorn

    from app.bootstrap import ensure_first_superuser
    from app.core.keys import key_set
    from app.migrations import startup_lock, upgrade_to_head
    from app.serving import SERVED_APP

    settings = get_settings()
    key_set()  # a bad JWT key file stops here, before any migration
    with startup_lock(), db_session() as session:  # hosts starting together take turns
        upgrade_to_head()
        generated = transaction(ensure_first_superuser, session)
        _ensure_oidc_key(session)
    if generated:
        typer.echo(
            f"Created the first admin {settings.FIRST_SUPERUSER_EMAIL} with the password "
            f"{generated}\nIt is shown only this once: keep it, or set FIRST_SUPERUSER_PASSWORD."
        )
    uvicorn.run(
        SERVED_APP,  # each worker process imports the app, and is tuned for serving
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        log_config=None,  # logging is configured by the app (text or JSON, with request ids)
        access_log=False,  # the app logs requests itself (ACCESS_LOG), with request ids
        server_header=False,  # no "server: uvicorn": what runs here is nobody's business
    )


@cli.command("create-superuser")
def create_superuser(
    email: Annotated[str | None, typer.Option(help="Default: FIRST_SUPERUSER_EMAIL.")] = None,
    password: Annotated[
        str | None, typer.Option(help="Prompted for (hidden) when omitted on a terminal.")
    ] = None,
    full_name: Annotated[
        str | None, typer.Option(help="Default: FIRST_SUPERUSER_FULL_NAME.")
    ] = None,
) -> None:
    """Create an admin account."""
    from app.models.user import UserCreate

    settings = get_settings()
    email = email or settings.FIRST_SUPERUSER_EMAIL
    password = password or settings.FIRST_SUPERUSER_PASSWORD
    if password is None:
        if not sys.stdin.isatty():
            fail("no password given: pass --password or set FIRST_SUPERUSER_PASSWORD")
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    full_name = full_name or settings.FIRST_SUPERUSER_FULL_NAME
    try:
        body = UserCreate(email=email, password=password, full_name=full_name)
    except ValidationError as error:
        fail(next(_problems(error)))
    with db_session() as session:  # a refused password (WeakPassword) is one line, exit 1
        hashed = new_password_hash_sync(password, email=body.email, full_name=full_name)
        user = transaction(
            users.create_user,
            session,
            email=body.email,
            full_name=full_name,
            hashed_password=hashed,
            role=Role.ADMIN,
            is_verified=True,
            actor=CLI_ACTOR,
            event="user.created",
        )
    typer.echo(f"Created admin {user.email}.")


def _problems(error: ValidationError) -> Iterator[str]:
    """Each problem of a body, in a line: the password's (the policy's own words), or the field
    that is not valid."""
    for problem in error.errors():
        where = [str(part) for part in problem["loc"]]
        if where == ["email"]:
            yield f"not a valid email address: {problem['input']}"
        else:
            yield problem["msg"].removeprefix("Value error, ")


@cli.command("set-role")
def set_role(email: str, role: Role) -> None:
    """Give a user the role user, moderator or admin."""
    with db_session() as session:
        user = find_user(session, email)
        transaction(users.update_user, session, user=user, changes={"role": role}, actor=CLI_ACTOR)
    typer.echo(f"{user.email} is now {role.value}.")


def _set_active(email: str, active: bool) -> None:
    with db_session() as session:
        user = find_user(session, email)
        changes: dict[str, object] = {"is_active": active}
        transaction(users.update_user, session, user=user, changes=changes, actor=CLI_ACTOR)
    typer.echo(f"{user.email} is now {'active' if active else 'inactive'}.")


@cli.command()
def activate(email: str) -> None:
    """Allow a user to log in again."""
    _set_active(email, True)


@cli.command()
def deactivate(email: str) -> None:
    """Stop a user from logging in, and end their sessions."""
    _set_active(email, False)


@cli.command()
def unlock(email: str) -> None:
    """Clear a lockout after too many failed logins."""
    from app.auth import lockout
    from app.db import transaction

    with db_session() as session:
        user = find_user(session, email)
        transaction(lockout.unlock, session, email=user.email, subject_id=user.id, actor=CLI_ACTOR)
    typer.echo(f"{user.email} is unlocked.")


@cli.command("reset-mfa")
def reset_mfa(email: str) -> None:
    """Turn off a user's TOTP (a lost device); they log in with the password and can set it up
    again."""
    from app.auth import mfa
    from app.db import transaction

    with db_session() as session:
        user = find_user(session, email)
        was_enabled = transaction(mfa.reset, session, user=user, actor=CLI_ACTOR)
    if was_enabled:
        typer.echo(f"TOTP is off for {user.email}; their recovery codes no longer work.")
    else:
        typer.echo(f"{user.email} had no TOTP enabled; nothing to do.")


@cli.command("list-users")
def list_users(
    role: Annotated[Role | None, typer.Option(help="Only users with this role.")] = None,
) -> None:
    """Print the users as a table."""
    table = Table("email", "full name", "role", "active", "verified", "created")
    with db_session() as session:
        after = None
        while True:
            page = users.list_users(session, limit=100, role=role, after=after)
            for user in page.items:
                table.add_row(
                    user["email"],
                    user["full_name"] or "",
                    user["role"].value,
                    "yes" if user["is_active"] else "no",
                    "yes" if user["is_verified"] else "no",
                    user["created_at"].strftime("%Y-%m-%d %H:%M"),
                )
            after = page.next
            if after is None:
                break
    Console(width=200).print(table)


def _ensure_oidc_key(session: Session) -> None:
    """Load (in development: create) the OpenID Connect signing keys; production without an
    RS256 one refuses to start once a client is registered (OIDC.md revision 2)."""
    from app.core import keys
    from app.core.config import SettingsError
    from app.crud import clients
    from app.crud.console import CONSOLE_CLIENT_ID

    try:
        if keys.DEFAULT_ALGORITHM not in keys.reload().active:
            raise SettingsError(
                "Invalid setting " + keys.MISSING_KEY.format(algorithm=keys.DEFAULT_ALGORITHM)
            )
    except SettingsError as error:
        # The console's built-in client signs nothing: only registered clients need the key.
        first, _ = transaction(clients.list_clients, session, skip=0, limit=2)
        if any(client.client_id != CONSOLE_CLIENT_ID for client in first):
            fail(str(error).removeprefix("Invalid setting "))


client_cli = typer.Typer(
    help="Register and manage OAuth / OpenID Connect clients.", rich_markup_mode=None
)
cli.add_typer(client_cli, name="client")


@client_cli.command("create")
def client_create(
    name: str,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option(
            "--redirect-uri",
            help="Registered exactly; repeat for more (needed for authorization_code).",
        ),
    ] = None,
    post_logout_redirect_uri: Annotated[
        list[str] | None, typer.Option("--post-logout-redirect-uri")
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="No secret (SPAs, mobile apps): PKCE only.")
    ] = False,
    first_party: Annotated[
        bool, typer.Option("--first-party", help="Trusted: users are never asked to consent.")
    ] = False,
    require_pkce: Annotated[
        bool,
        typer.Option(
            "--require-pkce/--no-require-pkce",
            help="--no-require-pkce: a confidential client may sign users in without PKCE,"
            " with scope openid and a nonce (the OpenID Basic OP plan sends none).",
        ),
    ] = True,
    grant: Annotated[
        list[GrantType] | None,
        typer.Option("--grant", help="Default: authorization_code and refresh_token."),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="An OIDC scope (openid, profile, email, offline_access, roles) or a permission"
            " of the service's API (account, users:read, ...). Default: the OIDC scopes.",
        ),
    ] = None,
    id_token_alg: Annotated[
        KeyAlgorithm | None,
        typer.Option("--id-token-alg", help="What its ID tokens are signed with (default RS256)."),
    ] = None,
    resource: Annotated[
        list[str] | None,
        typer.Option(
            "--resource",
            help="The identifier of an API resource the client may ask tokens for; repeat.",
        ),
    ] = None,
    organization_usage: Annotated[
        OrganizationUsage,
        typer.Option(
            "--organization-usage",
            help="none (default), allow or require: whether a sign-in selects an organization.",
        ),
    ] = OrganizationUsage.NONE,
) -> None:
    """Register a client; prints its client_id and, for a confidential client, its secret
    (shown only this once)."""
    from pydantic import ValidationError

    from app.crud import clients
    from app.models.client import ClientCreate

    values: dict[str, object] = {
        "name": name,
        "redirect_uris": redirect_uri or [],
        "post_logout_redirect_uris": post_logout_redirect_uri or [],
        "public": public,
        "first_party": first_party,
        "require_pkce": require_pkce,
        "resources": resource or [],
        "organization_usage": organization_usage,
    }
    if grant:
        values["grant_types"] = grant
    if scope:
        values["scopes"] = scope
    if id_token_alg is not None:
        values["id_token_signed_response_alg"] = id_token_alg.value
    try:
        body = ClientCreate.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "client"
        raise typer.BadParameter(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None
    with db_session() as session:
        try:
            created = transaction(clients.create_client, session, body=body, actor=CLI_ACTOR)
        except DomainError as error:
            fail(error.detail)
    typer.echo(f"client_id: {created.client_id}")
    if created.client_secret:
        typer.echo(f"client_secret: {created.client_secret}")
        typer.echo("The secret is shown only this once: keep it now.", err=True)


@client_cli.command("list")
def client_list() -> None:
    """Print the registered clients as a table."""
    from app.crud import clients

    table = Table("client_id", "name", "type", "first party", "grants", "redirect URIs")
    with db_session() as session:
        skip = 0
        while True:
            page, total = clients.list_clients(session, skip=skip, limit=100)
            for item in page:
                table.add_row(
                    item.client_id,
                    item.name,
                    ("public" if item.public else "confidential")
                    + ("" if item.require_pkce else ", PKCE optional"),
                    "yes" if item.first_party else "no",
                    " ".join(item.grant_types),
                    " ".join(item.redirect_uris),
                )
            skip += len(page)
            if not page or skip >= total:
                break
    Console(width=200).print(table)


@client_cli.command("delete")
def client_delete(client_id: str) -> None:
    """Delete a client, ending every session and token issued to it."""
    from app.crud import clients

    with db_session() as session:
        client = clients.get_client(session, client_id)
        if client is None:
            fail(f"no client with id {client_id}")
        transaction(clients.delete_client, session, client=client, actor=CLI_ACTOR)
    typer.echo(f"Deleted client {client_id}; its sessions and tokens no longer work.")


@client_cli.command("rotate-secret")
def client_rotate_secret(client_id: str) -> None:
    """Give a confidential client a new secret (printed once); the old one stops working."""
    from app.crud import clients

    with db_session() as session:
        client = clients.get_client(session, client_id)
        if client is None:
            fail(f"no client with id {client_id}")
        if client.public:
            fail(f"client {client_id} is public: it has no secret")
        rotated = transaction(clients.rotate_secret, session, client=client, actor=CLI_ACTOR)
    typer.echo(f"client_secret: {rotated.client_secret}")


@cli.command("generate-key")
def generate_key(
    algorithm: Annotated[
        KeyAlgorithm, typer.Option(help="RS256 (RSA 2048) or ES256 (EC P-256).")
    ] = KeyAlgorithm.RS256,
    out: Annotated[
        Path, typer.Option(help="Where to write the PEM private key; never overwritten.")
    ] = Path("keys/jwt.pem"),
    purpose: Annotated[
        KeyPurpose,
        typer.Option(
            "--for",
            help="jwt: the service's own tokens (JWT_PRIVATE_KEY_FILE); oidc: ID tokens and"
            " OAuth access tokens (OIDC_SIGNING_KEY_FILE).",
        ),
    ] = KeyPurpose.JWT,
) -> None:
    """Write a new private key for signing tokens (mode 0600) and print the settings to use."""
    from app.core.keys import generate_private_key

    pem, kid = generate_private_key(algorithm.value)
    try:
        out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fail(f"{out} already exists: choose another --out")
    except OSError as error:
        fail(f"cannot write {out}: {error.strerror}")
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    path = out.resolve()
    typer.echo(
        f"Wrote a new {algorithm.value} private key (kid {kid}) to {path}. Settings:", err=True
    )
    if purpose is KeyPurpose.OIDC:
        typer.echo(f"OIDC_SIGNING_KEY_FILE={path}")
        typer.echo("To rotate it later: manage keys rotate (no restart).", err=True)
        return
    typer.echo(f"ALGORITHM={algorithm.value}\nJWT_PRIVATE_KEY_FILE={path}")
    typer.echo(
        "On a rotation, keep the old key verifying until its tokens expire:"
        " JWT_EXTRA_PUBLIC_KEY_FILES=<the old key file>",
        err=True,
    )


keys_cli = typer.Typer(help="The OpenID Connect signing keys: list them, rotate them.")
cli.add_typer(keys_cli, name="keys")


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    if epoch <= 0:
        return "configured"  # a key file: active until a rotated key supersedes it
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@keys_cli.command("rotate")
def keys_rotate(
    algorithm: Annotated[
        list[KeyAlgorithm] | None,
        typer.Option("--algorithm", help="Repeat for more. Default: RS256 and ES256."),
    ] = None,
) -> None:
    """Stage a new signing key: published in the JWKS now, signing once
    KEY_PUBLISH_AHEAD_SECONDS have passed; the old key keeps verifying until its tokens expire."""
    from app.core import keys
    from app.crud import signing_keys

    chosen = list(dict.fromkeys(a.value for a in algorithm or list(KeyAlgorithm)))
    with db_session() as session:
        rows = transaction(signing_keys.rotate, session, algorithms=chosen)
    keys.forget()  # this process sees the new keys at once; the others within seconds
    for row in rows:
        typer.echo(
            f"{row.algorithm} key {row.kid} published now; signs from"
            f" {row.activates_at.astimezone(UTC).isoformat(timespec='seconds')}"
        )


@keys_cli.command("list")
def keys_list() -> None:
    """Each OpenID Connect signing key: kid, algorithm, state (next, active, retired), where it
    is kept, when it signs from and when it leaves the JWKS."""
    from app.core import keys

    ring = keys.reload()
    typer.echo(f"{'KID':<43}  {'ALG':<5}  {'STATE':<7}  {'SOURCE':<8}  {'SIGNS FROM':<25}  LEAVES")
    for status in ring.statuses:
        key = status.key
        typer.echo(
            f"{key.kid:<43}  {key.algorithm:<5}  {status.state.value:<7}  {key.source:<8}"
            f"  {_when(key.activates_at):<25}  {_when(status.leaves_at)}"
        )


# The product's authorization commands use the helpers above.
from manage_authz import org_cli, resource_cli, role_cli, user_cli  # noqa: E402

cli.add_typer(resource_cli, name="resource")
cli.add_typer(role_cli, name="role")
cli.add_typer(org_cli, name="org")
cli.add_typer(user_cli, name="user")

from manage_purge import purge  # noqa: E402

cli.command()(purge)

from manage_imports import import_cli  # noqa: E402

cli.add_typer(import_cli, name="import")


def main() -> None:
    try:
        cli()
    except OperationalError as error:
        from app.db_diagnosis import unreachable

        typer.echo(f"Error: {unreachable(error, get_settings().DATABASE_URL)}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
