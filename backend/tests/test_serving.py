"""`manage serve` tunes every worker process it serves with (the collector's start-up heap
frozen, a short GIL switch interval: app/serving.py); the app that tests and other
embedders import leaves their process as it was."""

import gc
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from uvicorn.importer import import_from_string

from app import main
from app.serving import GIL_SWITCH_INTERVAL_S

PYTHON_SWITCH_INTERVAL_S = 0.005  # the interpreter's default


@pytest.fixture
def untuned() -> Iterator[None]:
    """The process as a test finds it, and as it is left after."""
    interval = sys.getswitchinterval()
    yield
    gc.unfreeze()
    sys.setswitchinterval(interval)


def test_the_app_tests_import_leaves_the_process_untuned(client: TestClient) -> None:
    assert client.get("/health").status_code == 200  # started: its lifespan has run
    assert gc.get_freeze_count() == 0
    assert sys.getswitchinterval() == PYTHON_SWITCH_INTERVAL_S


def test_manage_serve_tunes_each_worker_once_the_app_has_started(
    monkeypatch: pytest.MonkeyPatch, untuned: None
) -> None:
    from manage import cli

    runs: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: runs.append((app, options)))
    result = CliRunner().invoke(cli, ["serve", "--workers", "2"])
    assert result.exit_code == 0, result.output
    [(target, options)] = runs
    assert options["factory"] is True and options["workers"] == 2

    # What each worker process does with it: import the factory and call it for the app (a
    # fresh one here, not the one the other tests share), then start it.
    fresh = main.create_app()
    monkeypatch.setattr(main, "app", fresh)
    served = import_from_string(target)()
    assert served is fresh
    assert gc.get_freeze_count() == 0  # not on import: once the app has started
    with TestClient(served) as started:
        assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == GIL_SWITCH_INTERVAL_S
        assert started.get("/health").status_code == 200
