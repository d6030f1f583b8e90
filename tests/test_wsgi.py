"""The web process as the Procfile runs it: gunicorn with jobsvc's config, over real HTTP."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.conftest import GunicornProcess
from tests.support import TERMINAL, wait_for


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    """One JSON request; returns the status and the decoded body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


@pytest.fixture
def gunicorn(e2e_app, e2e_env, tmp_path):
    server = GunicornProcess({**e2e_env, "WEB_CONCURRENCY": "1"}, tmp_path / "gunicorn.log")
    yield server.url
    server.stop()


def test_a_job_posted_over_http_succeeds(gunicorn, worker):
    status, created = http("POST", f"{gunicorn}/jobs", {"input_text": "Lock the door. Water the plants."})
    assert status == 201

    def finished() -> dict | None:
        job = http("GET", f"{gunicorn}/jobs/{created['event_id']}")[1]
        return job if job["status"] in TERMINAL else None

    job = wait_for(finished, timeout=30, what="the job")
    assert job["status"] == "succeeded" and job["checklist"].startswith("- ")
