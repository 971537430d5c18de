"""`manage purge [--dry-run]`: one pass of the retention janitor by hand (docs/retention.md),
with what it deleted (or, on a dry run, would delete) per table."""

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count the purgeable rows; delete nothing.")
    ] = False,
) -> None:
    """Delete what the retention rules call purgeable (expired sessions, tokens, codes, ...)."""
    from app.jobs import janitor

    done = janitor.purge(dry_run=dry_run)
    if not done.ran:
        typer.echo("Error: another janitor is running; nothing done.", err=True)
        raise typer.Exit(code=1)
    table = Table("TABLE", "PURGEABLE" if dry_run else "DELETED")
    for name, count in done.counts.items():
        table.add_row(name, str(count))
    Console(width=100).print(table)
    total = sum(done.counts.values())
    typer.echo(f"{total} rows {'purgeable (dry run: nothing deleted)' if dry_run else 'deleted'}.")
