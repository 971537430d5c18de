"""`manage import users FILE.jsonl`: bring users from another system (EVENTS.md, "Bringing
users from another system"; docs/bringing-users.md). The file streams through in batches of
one transaction each (app/imports), with a progress bar on the terminal; each line that is an
error is printed as it comes (every line's result goes to --report), then a summary. Exit 1
when any line is an error (the others are imported) or when the file is not JSON Lines."""

import os
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from app.imports import firebase
from app.imports.run import NotJsonLines, import_items, json_lines
from manage import CLI_ACTOR, db_session, fail

import_cli = typer.Typer(
    help="Bring users from another system.", no_args_is_help=True, rich_markup_mode=None
)

FILE = Annotated[
    Path, typer.Argument(help="JSON Lines: one user a line.", exists=True, dir_okay=False)
]


def _parameters(
    signer_key: str | None, salt_separator: str, rounds: int | None, mem_cost: int | None
) -> firebase.FirebaseParameters | None:
    given = [signer_key, rounds, mem_cost]
    if all(value is None for value in given):
        return None
    if signer_key is None or rounds is None or mem_cost is None:
        fail("--firebase-signer-key, --firebase-rounds and --firebase-mem-cost go together")
    try:
        return firebase.FirebaseParameters(signer_key, salt_separator, rounds, mem_cost).checked()
    except firebase.FirebaseError as error:
        fail(str(error))


@import_cli.command("users")
def import_users(
    file: FILE,
    update: Annotated[
        bool, typer.Option(help="Update the users found again (by external_id or email).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Check every line and report; write nothing.")
    ] = False,
    firebase_signer_key: Annotated[
        str | None, typer.Option(help="Firebase: the project's base64 signer key.")
    ] = None,
    firebase_salt_separator: Annotated[
        str, typer.Option(help="Firebase: the base64 salt separator.")
    ] = "",
    firebase_rounds: Annotated[int | None, typer.Option(help="Firebase: rounds.")] = None,
    firebase_mem_cost: Annotated[int | None, typer.Option(help="Firebase: mem_cost.")] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write every line's result here, as JSON Lines.")
    ] = None,
) -> None:
    """Import users from FILE (JSON Lines), any size; each line created, updated, skipped or
    error. A second run of the same file changes nothing."""
    parameters = _parameters(
        firebase_signer_key, firebase_salt_separator, firebase_rounds, firebase_mem_cost
    )
    counts: Counter[str] = Counter()
    console = Console(stderr=True)
    size = file.stat().st_size
    with (
        file.open("rb") as stream,
        report.open("w") if report else open(os.devnull, "w") as results,
        db_session() as session,
        Progress(
            TextColumn("importing"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}% {task.fields[lines]} lines"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task("import", total=size or 1, lines=0)
        try:
            items = json_lines(stream)
            for result in import_items(
                session, items, actor=CLI_ACTOR, update=update, dry_run=dry_run,
                parameters=parameters,
            ):  # fmt: skip
                counts[result.status] += 1
                results.write(result.model_dump_json(exclude_none=True) + "\n")
                if result.status == "error":
                    reason = f": {result.reason}" if result.reason else ""
                    progress.console.print(
                        f"line {result.line} {result.email or '-'} {result.status}{reason}",
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
                progress.update(task, completed=stream.tell(), lines=result.line)
        except NotJsonLines as error:
            fail(f"{file} is not JSON Lines: {error}")
        except firebase.FirebaseError as error:
            fail(str(error))
    _summary(counts, dry_run=dry_run)
    if counts["error"]:
        raise typer.Exit(code=1)


def _summary(counts: Counter[str], *, dry_run: bool) -> None:
    table = Table(title="Import (dry run: nothing written)" if dry_run else "Import")
    for status in ("created", "updated", "skipped", "error"):
        table.add_column(status, justify="right")
    table.add_row(*(str(counts[s]) for s in ("created", "updated", "skipped", "error")))
    Console().print(table)
