"""The application factory: the only way to get an app."""

from __future__ import annotations

from jobsvc import create_app
from tests.conftest import settings_from


def test_config_overrides_the_environment(stack_env):
    app = create_app({**settings_from(stack_env), "QUEUE_NAME": "override"})
    assert app.config["QUEUE_NAME"] == "override"


def test_instance_folder_is_created_and_holds_the_default_database(tmp_path, stack_env):
    instance = tmp_path / "fresh-instance"
    app = create_app({**settings_from(stack_env), "INSTANCE_PATH": str(instance), "DATABASE_URL": None})

    assert instance.is_dir()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance}/jobsvc.sqlite3"


def test_two_apps_are_independent(stack_env):
    first = create_app({**settings_from(stack_env), "QUEUE_NAME": "a"})
    second = create_app({**settings_from(stack_env), "QUEUE_NAME": "b"})
    assert (first.config["QUEUE_NAME"], second.config["QUEUE_NAME"]) == ("a", "b")


def test_init_db_command_creates_the_schema(tmp_path, stack_env):
    app = create_app({**settings_from(stack_env), "DATABASE_URL": f"sqlite:///{tmp_path}/new.sqlite3"})
    result = app.test_cli_runner().invoke(args=["init-db"])

    assert result.exit_code == 0 and "Schema is ready" in result.output
    assert (tmp_path / "new.sqlite3").exists()
