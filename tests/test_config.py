"""Configuration: defaults, .env, environment precedence and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobsvc.config import (
    SETTINGS,
    ConfigError,
    database_url,
    read_settings,
    redis_url,
)
from jobsvc.settings_docs import render_env_example, render_settings_table

REPO = Path(__file__).resolve().parent.parent


def test_every_setting_has_its_documented_default_when_nothing_is_set():
    settings = read_settings({}, env_file=None)

    assert settings["LLM_PROVIDER"] == "auto"
    assert settings["MAX_INPUT_CHARS"] == 1_000_000
    assert settings["PORT"] == 8000
    assert settings["OPENAI_API_KEY"] is None
    assert set(settings) == {s.key for s in SETTINGS}


def test_environment_wins_over_dotenv_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("QUEUE_NAME=from-file\nOPENAI_MODEL=file-model\n")

    settings = read_settings({"QUEUE_NAME": "from-env"}, env_file=env_file)

    assert settings["QUEUE_NAME"] == "from-env"
    assert settings["OPENAI_MODEL"] == "file-model"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("LLM_PROVIDER", "gpt"),
        ("JOB_TIMEOUT", "-1"),
        ("LLM_TIMEOUT", "soon"),
        ("LLM_MAX_RETRIES", "-1"),
        ("PROXY_FIX", "-2"),
    ],
)
def test_an_unusable_value_names_the_setting(key, value):
    with pytest.raises(ConfigError, match=key):
        read_settings({key: value}, env_file=None)


def test_default_database_is_an_absolute_sqlite_path_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = database_url({"DATABASE_URL": None}, "instance")
    assert url == f"sqlite:///{tmp_path}/instance/jobsvc.sqlite3"


def test_heroku_postgres_urls_use_the_psycopg_driver():
    assert database_url({"DATABASE_URL": "postgres://u:p@h/db"}, "/i") == "postgresql+psycopg://u:p@h/db"


def test_default_redis_is_the_embedded_socket_in_the_instance_folder():
    assert redis_url({"REDIS_URL": None}, "/srv/instance") == "unix:///srv/instance/redis.sock"
    assert redis_url({"REDIS_URL": "redis://r:6379/1"}, "/i") == "redis://r:6379/1"


def test_env_example_lists_every_setting_as_the_table_says():
    # Regenerate with `python -m jobsvc.settings_docs env > .env.example`.
    assert (REPO / ".env.example").read_text() == render_env_example()


def test_readme_shows_the_settings_table_as_the_table_says():
    # Regenerate with `python -m jobsvc.settings_docs table` and paste it into the README.
    assert render_settings_table() in (REPO / "README.md").read_text()
