"""Helpers the tests share: polling for a condition instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask.testing import FlaskClient

T = TypeVar("T")

TERMINAL = {"succeeded", "failed"}


def wait_for(condition: Callable[[], T], timeout: float = 20, interval: float = 0.02, what: str = "") -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def submit(client: FlaskClient, text: str) -> str:
    """POST a job and return its event id."""
    response = client.post("/jobs/", json={"input_text": text})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["event_id"]


def wait_for_job(client: FlaskClient, event_id: str, timeout: float = 30) -> dict[str, Any]:
    """Poll the job until its status is terminal, and return it."""

    def finished() -> dict[str, Any] | None:
        job = client.get(f"/jobs/{event_id}/").get_json()
        return job if job["status"] in TERMINAL else None

    return wait_for(finished, timeout=timeout, what=f"job {event_id} to finish")
