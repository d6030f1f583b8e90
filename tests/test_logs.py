"""Logs: a request id on every web line and in X-Request-ID, JSON lines on request, transitions."""

from __future__ import annotations

import json
import logging
import uuid

from jobsvc.logs import JsonFormatter, RequestIdFilter
from tests.conftest import fresh_app
from tests.support import submit, wait_for_job


def test_a_request_id_is_made_and_echoed(client):
    response = client.get("/healthz")
    assert len(response.headers["X-Request-ID"]) == 32


def test_the_callers_request_id_is_kept_if_it_is_plain(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    odd = client.get("/healthz", headers={"X-Request-ID": "x" * 500}).headers["X-Request-ID"]
    assert odd != "x" * 500 and len(odd) == 32


def test_json_lines_carry_the_request_id_of_the_request_that_logged_them(app):
    record = logging.LogRecord(
        "jobsvc.core.service", logging.INFO, __file__, 1, "job %s status=pending", ("j1",), None
    )
    with app.test_request_context("/jobs/", headers={"X-Request-ID": "req-42"}):
        app.preprocess_request()
        RequestIdFilter().filter(record)

    line = json.loads(JsonFormatter().format(record))

    assert line == {
        "time": line["time"],
        "level": "INFO",
        "logger": "jobsvc.core.service",
        "message": "job j1 status=pending",
        "request_id": "req-42",
    }


def test_a_json_worker_writes_only_json_lines_with_one_line_per_transition(start_worker, e2e_env, tmp_path):
    env = {
        **e2e_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/json.sqlite3",
        "QUEUE_NAME": "json",
        "LOG_FORMAT": "json",
    }
    client = fresh_app(env).test_client()
    worker = start_worker(**env)
    text = f"Lock the door {uuid.uuid4()}."
    event_id = submit(client, text)
    wait_for_job(client, event_id)
    worker.stop()

    lines = [json.loads(line) for line in worker.log().splitlines() if line.strip()]
    transitions = [line["message"] for line in lines if line["message"].startswith(f"job {event_id} status=")]
    assert len(transitions) == 2  # one line per transition: running, then succeeded
    assert transitions[0] == f"job {event_id} status=running attempt=1"
    assert transitions[1].startswith(f"job {event_id} status=succeeded attempt=1 duration=")
    assert not any(text in line["message"] for line in lines)
