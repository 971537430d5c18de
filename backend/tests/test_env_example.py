"""`.env.example` documents every setting, and only real ones."""

import re
from pathlib import Path

from app.core.config import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_env_example_lists_every_setting() -> None:
    documented = set(re.findall(r"^#? ?([A-Z][A-Z_0-9]+)=", ENV_EXAMPLE.read_text(), re.M))
    assert documented == set(Settings.model_fields)


def test_env_example_values_are_valid_settings(tmp_path: Path) -> None:
    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    values = {k: v.strip('"') for k, v in values.items()}
    settings = Settings(_env_file=None, SECRET_KEY_FILE=tmp_path / "key", **values)  # type: ignore[arg-type]
    assert settings.DATABASE_URL == "sqlite:///./app.db"


def test_an_empty_redis_url_means_no_redis(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, REDIS_URL="", SECRET_KEY_FILE=tmp_path / "key")  # type: ignore[call-arg]
    assert settings.REDIS_URL is None
