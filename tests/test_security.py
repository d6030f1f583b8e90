"""Issue 11's bounded resources, and secrets and files: each test attacks one promise.

Admin pages are attacked in test_dashboard.py, tenants in test_tenants.py, rate limits in
test_client_api.py, hostile bodies in test_fuzz.py, /metrics and /readyz in test_health.py.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pytest
from redis import Redis

from jobsvc import create_app
from jobsvc.errors import ConfigError
from tests.conftest import REPO, SETTING_KEYS, fresh_app, settings_from
from tests.support import submit, wait_for


@pytest.fixture
def unattended_env(stack_env, tmp_path):
    """Settings for an app on an empty database and a queue nobody works: jobs stay pending."""
    return {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/s.sqlite3",
        "QUEUE_NAME": f"unattended-{uuid.uuid4()}",
    }


def waiting(app) -> int:
    """How many long polls wait in this process now (0 before the first one started the listener)."""
    listener = app.extensions.get("jobsvc.notices", {}).get("listener")
    return listener.waiting if listener is not None else 0


def test_past_max_waiters_a_long_poll_is_answered_at_once_with_retry_after(unattended_env):
    app = fresh_app({**unattended_env, "MAX_WAITERS": "1"})
    event_id = submit(app.test_client(), "Wear gloves.")
    poll = f"/jobs/{event_id}/?wait=30"

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(lambda: app.test_client().get(poll))
        wait_for(lambda: waiting(app) == 1, what="the first waiter")
        second = pool.submit(lambda: app.test_client().get(poll))
        wait([second], timeout=15)
        # Ends the first wait (and the second's too, had it been let in to wait).
        app.test_client().post(f"/jobs/{event_id}/cancel")
        first_answer, second_answer = first.result(), second.result()

    assert (second_answer.status_code, second_answer.get_json()["status"]) == (200, "pending")
    assert int(second_answer.headers["Retry-After"]) > 0
    assert first_answer.get_json()["status"] == "canceled"


def test_max_waiters_defaults_to_half_the_web_threads(unattended_env):
    app = fresh_app({**unattended_env, "WEB_THREADS": "8"})
    event_id = submit(app.test_client(), "Wear gloves.")
    app.test_client().get(f"/jobs/{event_id}/?wait=0.01")

    assert app.extensions["jobsvc.notices"]["listener"].max_waiters == 4


def test_a_list_page_with_whole_inputs_stays_under_a_few_mb(unattended_env):
    app = fresh_app({**unattended_env, "MAX_INPUT_CHARS": "100000"})
    client = app.test_client()
    longest = "x" * app.config["MAX_INPUT_CHARS"]
    for _ in range(12):
        client.post("/jobs/", json={"input_text": longest})

    response = client.get("/jobs/?include_input=true&page_size=100")

    assert response.status_code == 200
    assert len(response.get_json()) == 10  # 1,000,000 characters / MAX_INPUT_CHARS=100,000
    assert len(response.data) < 3 * 1024 * 1024
    pages = json.loads(response.headers["X-Pagination"])
    assert (pages["total"], pages["total_pages"], pages["next_page"]) == (12, 2, 2)
    # Without the inputs, the page size asked for is served.
    assert len(client.get("/jobs/?page_size=100").get_json()) == 12


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_instance_folder_is_created_0700_and_a_cloned_one_is_tightened(stack_env, tmp_path):
    created = tmp_path / "new-instance"
    cloned = tmp_path / "cloned-instance"
    cloned.mkdir(mode=0o755)
    cloned.chmod(0o755)  # as git makes instance/ from instance/.gitkeep

    for folder in (created, cloned):
        create_app({**settings_from(stack_env), "INSTANCE_PATH": str(folder)})

    assert (mode(created), mode(cloned)) == (0o700, 0o700)


def test_the_sqlite_file_and_its_wal_are_readable_by_their_user_only(stack_env, tmp_path):
    env = {k: v for k, v in stack_env.items() if k != "DATABASE_URL"} | {"INSTANCE_PATH": str(tmp_path)}
    old_umask = os.umask(0o022)  # a usual umask: files come out world-readable unless made otherwise
    try:
        app = fresh_app(env)
        submit(app.test_client(), "Wear gloves.")
    finally:
        os.umask(old_umask)

    files = sorted(tmp_path.glob("jobsvc.sqlite3*"))
    assert tmp_path / "jobsvc.sqlite3" in files
    assert {path.name: mode(path) & 0o077 for path in files} == {path.name: 0 for path in files}


def test_the_embedded_redis_aof_is_readable_by_its_user_only(stack_env, tmp_path):
    env = {k: v for k, v in stack_env.items() if k != "REDIS_URL"} | {"INSTANCE_PATH": str(tmp_path)}
    base = {k: v for k, v in os.environ.items() if k not in SETTING_KEYS}
    process = subprocess.Popen(
        [sys.executable, "-m", "jobsvc.embedded_redis"],
        env={**base, "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.DEVNULL,
        umask=0o022,
    )
    try:
        socket = tmp_path / "redis.sock"
        wait_for(socket.exists, timeout=30, what="the embedded Redis")
        Redis(unix_socket_path=str(socket)).set("job", "a queue entry")
    finally:
        process.terminate()
        process.wait(timeout=15)

    files = [path for path in tmp_path.rglob("*") if "appendonly" in path.name]
    assert files, list(tmp_path.rglob("*"))
    assert {str(path): mode(path) & 0o077 for path in files} == {str(path): 0 for path in files}


@pytest.mark.parametrize("exposed", [{"HOST": "0.0.0.0"}, {"HOST": "::"}, {"PROXY_FIX": "1"}])
def test_the_default_secret_key_is_refused_where_other_machines_can_reach_the_app(stack_env, exposed):
    with pytest.raises(ConfigError) as refused:
        create_app(settings_from({**stack_env, **exposed}))
    assert "SECRET_KEY" in str(refused.value) and "token_hex" in str(refused.value)

    assert create_app(settings_from({**stack_env, **exposed, "SECRET_KEY": "a" * 64}))
    assert create_app(settings_from(stack_env))  # `make run` and the suite: loopback, default key


STARTUP = "from jobsvc import create_app; create_app()"


def start_output(env: dict[str, str]) -> str:
    """What building the app prints, as the web process builds it at start."""
    base = {k: v for k, v in os.environ.items() if k not in SETTING_KEYS}
    result = subprocess.run(
        [sys.executable, "-c", STARTUP],
        env={**base, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_a_public_bind_without_api_keys_logs_one_clear_warning_at_start(stack_env, tmp_path):
    public = {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/w.sqlite3",
        "HOST": "0.0.0.0",
        "SECRET_KEY": "x" * 40,
    }

    open_output = start_output(public)
    keyed_output = start_output({**public, "API_KEYS": "shop:sk-shop"})
    loopback_output = start_output({k: v for k, v in public.items() if k != "HOST"})

    assert open_output.count("API_KEYS is not set") == 1
    assert "anyone who can reach this server can submit jobs and read every job" in open_output
    assert "API_KEYS is not set" not in keyed_output + loopback_output
