"""An import from start to end, for the command line and the API alike: JSON Lines (or the
items of a JSON array) read one by one, an optional header line with a Firebase project's
hash parameters, each line prepared alone (lines.prepare), and the prepared lines written
in batches (users.write). Results come out in line order, batch after batch, so a file of any
size streams through in the memory of one batch.
"""

import io
import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlmodel import Session

from app.crud.audit import Actor
from app.imports import firebase
from app.imports.lines import LineResult, Prepared, prepare, refused
from app.imports.users import write

BATCH_LINES = 500  # one transaction each: bench/README.md, "Importing users"
HEADER_KEY = "firebase_scrypt"


class NotJsonLines(ValueError):
    """Input that is not JSON Lines at all (its first line is no JSON object)."""


class BadLine:
    """A line of a JSON Lines file that is not JSON: that line's error."""

    reason = "not valid JSON"


class FirebaseHeader(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signer_key: str
    salt_separator: str = ""
    rounds: int
    mem_cost: int


def json_lines(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line; BadLine for one that is not JSON.
    NotJsonLines when the first non-blank line is not a JSON object."""
    first = True
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            value: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            value = BadLine()
        if first and not isinstance(value, dict):
            start = raw.lstrip()[:1]
            if start == b"[":
                raise NotJsonLines(
                    "it holds a JSON array, not JSON Lines (one object a line: jq -c '.[]' "
                    "makes them)"
                )
            raise NotJsonLines(f"line {number} is not a JSON object")
        first = False
        yield number, value


def header(value: Any) -> firebase.FirebaseParameters | None:
    """The Firebase parameters of a header line `{"firebase_scrypt": {...}}`, or None when
    the value is no header; FirebaseError when it is a bad one."""
    if not (isinstance(value, dict) and set(value) == {HEADER_KEY}):
        return None
    try:
        given = FirebaseHeader.model_validate(value[HEADER_KEY])
    except ValidationError as error:
        where = ".".join(str(part) for part in error.errors()[0]["loc"])
        raise firebase.FirebaseError(
            f"firebase_scrypt header: {where} is missing or wrong"
        ) from None
    return firebase.FirebaseParameters(**given.model_dump()).checked()


def import_items(
    session: Session,
    items: Iterable[tuple[int, Any]],
    *,
    actor: Actor,
    update: bool = False,
    dry_run: bool = False,
    parameters: firebase.FirebaseParameters | None = None,
    batch_lines: int = BATCH_LINES,
) -> Iterator[LineResult]:
    """Import `items` ((line number, value) pairs): every line's result, in line order.
    `parameters` (the command line's) win over a header line's."""
    batch: list[Prepared] = []
    waiting: list[LineResult] = []
    first = True
    for number, value in items:
        if first:
            first = False
            found = header(value)
            if found is not None:
                parameters = parameters or found
                continue
        if isinstance(value, BadLine):
            waiting.append(refused(number, None, value.reason))
            continue
        ready = prepare(number, value, firebase_parameters=parameters, hash_passwords=not dry_run)
        if isinstance(ready, LineResult):
            waiting.append(ready)
            continue
        batch.append(ready)
        if len(batch) >= batch_lines:
            yield from _flush(session, batch, waiting, update=update, actor=actor, dry_run=dry_run)
            batch, waiting = [], []
    yield from _flush(session, batch, waiting, update=update, actor=actor, dry_run=dry_run)


def _flush(
    session: Session,
    batch: list[Prepared],
    waiting: list[LineResult],
    *,
    update: bool,
    actor: Actor,
    dry_run: bool,
) -> list[LineResult]:
    written = write(session, batch, update=update, actor=actor, dry_run=dry_run) if batch else []
    return sorted([*waiting, *written], key=lambda result: result.line)


class TooManyLines(ValueError):
    """A request body with more lines than one request takes."""


def body_items(body: bytes, content_type: str, *, max_lines: int) -> list[tuple[int, Any]]:
    """The items of an API request: JSON Lines (`application/x-ndjson`, `application/jsonl`)
    or a JSON array (`application/json`), numbered from 1. NotJsonLines when it is neither,
    TooManyLines past `max_lines`, ValueError for another content type."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json":
        try:
            value = json.loads(body)
        except ValueError:
            raise NotJsonLines("the body is not JSON") from None
        if not isinstance(value, list):
            raise NotJsonLines("an application/json body is a JSON array of users")
        items = list(enumerate(value, start=1))
    elif kind in {"application/x-ndjson", "application/jsonl", "application/json-lines"}:
        items = []
        for item in json_lines(io.BytesIO(body)):
            items.append(item)
            if len(items) > max_lines:
                break
    else:
        raise ValueError("send application/x-ndjson (JSON Lines) or application/json (an array)")
    header_line = bool(items) and header(items[0][1]) is not None
    if len(items) - header_line > max_lines:
        raise TooManyLines(
            f"At most {max_lines:,} users a request: split the file, or use `manage import users`"
        )
    return items
