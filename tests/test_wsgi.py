"""The web process as the Procfile runs it: gunicorn with jobsvc's config, over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, SETTING_KEYS, free_port
from tests.support import TERMINAL, wait_for


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


@pytest.fixture
def gunicorn(app, stack_env, tmp_path: Path):
    port = free_port()
    base = {k: v for k, v in os.environ.items() if k not in SETTING_KEYS}
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:jobsvc.gunicorn_conf", "wsgi:app"],
        cwd=REPO,
        env={**base, **stack_env, "PORT": str(port), "WEB_CONCURRENCY": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: "API docs at" in (tmp_path / "gunicorn.log").read_text(), timeout=20, what="gunicorn")
    yield url
    process.terminate()
    process.wait(timeout=20)
    log.close()


def test_a_job_posted_over_http_succeeds(gunicorn, worker):
    status, created = http("POST", f"{gunicorn}/jobs", {"input_text": "Lock the door. Water the plants."})
    assert status == 201

    def finished() -> dict | None:
        job = http("GET", f"{gunicorn}/jobs/{created['event_id']}")[1]
        return job if job["status"] in TERMINAL else None

    job = wait_for(finished, timeout=30, what="the job")
    assert job["status"] == "succeeded" and job["checklist"].startswith("- ")
