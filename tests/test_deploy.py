"""The deploy files say what the code does: app.json, the Procfile, the systemd units, .python-version."""

from __future__ import annotations

import configparser
import json
import re

import pytest

from jobsvc.config import SETTINGS, read_settings
from jobsvc.web import gunicorn_conf
from tests.conftest import REPO

SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13")
HEROKU_SMALLEST_PLAN_CONNECTIONS = 20


def _app_json() -> dict:
    return json.loads((REPO / "app.json").read_text())


def _procfile() -> dict[str, str]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(REPO / "deploy" / "systemd" / f"jobsvc-{name}.service")
    return unit


def test_app_json_provisions_postgres_and_redis_and_sets_only_real_settings():
    app = _app_json()

    plans = [addon["plan"].split(":")[0] for addon in app["addons"]]
    assert plans == ["heroku-postgresql", "heroku-redis"]
    assert set(app["env"]) <= {setting.key for setting in SETTINGS}
    # Heroku Redis's certificate is self-signed.
    assert app["env"]["REDIS_TLS_VERIFY"]["value"] == "false"
    assert set(app["formation"]) == set(_procfile()) - {"release"}


def test_app_json_keeps_every_connection_within_the_smallest_postgres_plan():
    app = _app_json()
    values = {key: spec["value"] for key, spec in app["env"].items() if "value" in spec}
    settings = read_settings(values, env_file=None)
    processes = (
        app["formation"]["web"]["quantity"] * settings["WEB_CONCURRENCY"]
        + app["formation"]["worker"]["quantity"] * settings["WORKER_PROCESSES"]
    )
    per_process = settings["DB_POOL_SIZE"] + settings["DB_MAX_OVERFLOW"]

    # Plus one for the release phase, which runs while the old release still serves.
    assert processes * per_process + 1 <= HEROKU_SMALLEST_PLAN_CONNECTIONS


@pytest.mark.parametrize("process", ["web", "worker", "release"])
def test_each_systemd_unit_runs_what_the_procfile_runs(process):
    # The unit takes its environment (HOST included) from /etc/jobsvc/env, not the command line.
    procfile = re.sub(r"^(?:[A-Z_]+=\S+ )+", "", _procfile()[process].replace(" --bind 0.0.0.0:$PORT", ""))
    exec_start = _unit(process)["Service"]["ExecStart"]

    assert exec_start.replace("/srv/jobsvc/.venv/bin/", "") == procfile


def test_systemd_waits_for_gunicorn_to_finish_its_long_polls_before_killing():
    graceful = gunicorn_conf.timeouts(read_settings({}, env_file=None))["graceful_timeout"]
    assert int(_unit("web")["Service"]["TimeoutStopSec"]) > graceful


def test_the_release_phase_runs_before_web_starts_on_a_plain_host():
    unit = _unit("web")["Unit"]
    assert "jobsvc-release.service" in unit["Requires"].split()
    assert "jobsvc-release.service" in unit["After"].split()


def test_the_heroku_runtime_is_a_supported_python_and_the_readme_names_them_all():
    pinned = (REPO / ".python-version").read_text().strip()
    readme = (REPO / "README.md").read_text()

    assert re.fullmatch(r"3\.\d+", pinned), "Heroku takes a major version such as 3.12"
    assert pinned in SUPPORTED_PYTHONS
    assert "Supported Python versions: " + ", ".join(SUPPORTED_PYTHONS) in readme
