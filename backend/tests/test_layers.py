"""The structure rule of DESIGN.md ("One way through"): the domain (auth, crud, oauth,
passkeys, core, models, imports) knows no web framework; async code reaches a sync step through
app.steps.run_step alone."""

import re
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
DOMAIN = ("auth", "crud", "oauth", "passkeys", "core", "models", "imports")
WEB_IMPORT = re.compile(r"^\s*(from|import)\s+(starlette|fastapi)\b", re.M)


def test_no_domain_module_imports_a_web_framework() -> None:
    offenders = [
        str(path.relative_to(APP))
        for package in DOMAIN
        for path in (APP / package).rglob("*.py")
        if WEB_IMPORT.search(path.read_text())
    ]
    assert offenders == []


def test_every_thread_hop_goes_through_run_step() -> None:
    offenders = [
        str(path.relative_to(APP))
        for path in APP.rglob("*.py")
        if "run_in_threadpool" in path.read_text() or "to_thread.run_sync" in path.read_text()
    ]
    assert offenders == ["steps.py"]
