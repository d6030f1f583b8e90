"""Waiting without hammering: long polling with ?wait=, ETag and 304, Retry-After."""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from jobsvc.config import read_settings
from jobsvc.core.notices import listener
from jobsvc.web import gunicorn_conf
from tests.conftest import GunicornProcess, fresh_app
from tests.support import submit
from tests.test_wsgi import http


def test_wait_answers_when_the_job_finishes(e2e_client, worker, fake_llm):
    fake_llm.state.delay = 0.3
    event_id = submit(e2e_client, f"Wear gloves {uuid.uuid4()}.")

    response = e2e_client.get(f"/jobs/{event_id}/?wait=30")

    assert response.status_code == 200
    assert response.get_json()["status"] == "succeeded"
    assert "Retry-After" not in response.headers


def test_an_unfinished_job_after_the_wait_says_when_to_poll_again(e2e_app, stack_env, tmp_path):
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/idle.sqlite3", "QUEUE_NAME": "idle"}
    app = fresh_app(env)
    client = app.test_client()
    event_id = submit(client, "Nobody works this queue.")

    response = client.get(f"/jobs/{event_id}/?wait=0.5")

    assert response.get_json()["status"] == "pending"
    assert int(response.headers["Retry-After"]) > 0


def test_a_wait_longer_than_wait_max_seconds_gets_the_job_at_the_cap_with_retry_after(stack_env, tmp_path):
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/cap.sqlite3", "QUEUE_NAME": "cap"}
    client = fresh_app(env, WAIT_MAX_SECONDS=0.2).test_client()
    event_id = submit(client, "Nobody works this queue either.")

    response = client.get(f"/jobs/{event_id}/?wait=3600")

    assert response.status_code == 200
    assert response.get_json()["status"] == "pending"
    assert int(response.headers["Retry-After"]) > 0


def test_a_long_poll_stays_under_the_routers_30_second_limit_by_default():
    assert read_settings({}, env_file=None)["WAIT_MAX_SECONDS"] == 25


def test_a_negative_wait_is_422(e2e_client):
    event_id = submit(e2e_client, "Wear gloves.")
    response = e2e_client.get(f"/jobs/{event_id}/?wait=-1")
    assert response.status_code == 422
    assert "wait" in response.get_json()["errors"]["query"]


@pytest.mark.parametrize("wait_max", [5, 25, 28])
def test_gunicorn_lets_a_long_poll_finish_after_sigterm_before_the_platform_kills(wait_max):
    settings = {"WAIT_MAX_SECONDS": wait_max}
    limits = gunicorn_conf.timeouts(settings)

    # A poll that started just before SIGTERM ends before gunicorn stops waiting for it,
    # and gunicorn stops before the platform's SIGKILL 30 s after SIGTERM.
    assert wait_max <= limits["graceful_timeout"] < gunicorn_conf.PLATFORM_KILL_SECONDS
    # A process is never taken for stuck while its threads wait.
    assert limits["timeout"] > wait_max
    # Idle connections are closed by the router, not by gunicorn under the router's feet.
    assert limits["keepalive"] > 60


def test_etag_and_if_none_match_answer_304_until_the_job_changes(e2e_client, worker):
    event_id = submit(e2e_client, f"Wear gloves {uuid.uuid4()}.")
    done = e2e_client.get(f"/jobs/{event_id}/?wait=30")
    etag = done.headers["ETag"]

    again = e2e_client.get(f"/jobs/{event_id}/", headers={"If-None-Match": etag})

    assert again.status_code == 304 and again.data == b""
    assert e2e_client.post(f"/jobs/{event_id}/cancel").status_code == 409
    assert e2e_client.get(f"/jobs/{event_id}/", headers={"If-None-Match": '"stale"'}).status_code == 200


def test_200_concurrent_waiters_are_all_answered_when_their_job_finishes(
    e2e_app, e2e_env, start_worker, fake_llm, tmp_path
):
    env = {**e2e_env, "DATABASE_URL": f"sqlite:///{tmp_path}/waiters.sqlite3", "QUEUE_NAME": "waiters"}
    # Room for all 200 in either process: the two gunicorn processes accept from one socket,
    # and nothing makes them share the connections evenly (in a CI run, six polls past one
    # process's 110 were answered "running" at once).
    env.update(WEB_THREADS="200", MAX_WAITERS="200")
    fresh_app(env)  # the schema gunicorn and the worker will use
    web = GunicornProcess({**env, "WEB_CONCURRENCY": "2"}, tmp_path / "gunicorn.log")
    worker = start_worker(**env)
    # A job slow enough (two 4-second LLM calls) for all 200 waiters to be waiting when it ends.
    fake_llm.state.delay = 4
    try:
        event_id = http("POST", f"{web.url}/jobs/", {"input_text": "Everyone waits for me."})[1]["event_id"]

        def wait() -> tuple[str, float]:
            job = http("GET", f"{web.url}/jobs/{event_id}/?wait=25")[1]
            return job["status"], time.time()

        with ThreadPoolExecutor(max_workers=200) as pool:
            waiters = [pool.submit(wait) for _ in range(200)]
            answers = [waiter.result() for waiter in waiters]
        finished_at = datetime.fromisoformat(http("GET", f"{web.url}/jobs/{event_id}/")[1]["finished_at"])
    finally:
        worker.stop()
        web.stop()

    assert [status for status, _ in answers] == ["succeeded"] * 200
    # All 200 were waiting together when the job finished, and were woken by the notice,
    # not by the end of their 25 s wait.
    assert min(at for _, at in answers) >= finished_at.timestamp()
    assert max(at for _, at in answers) - finished_at.timestamp() < 10


def test_the_finished_job_listener_warns_once_per_redis_outage(stack_env, tmp_path, caplog):
    env = {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/quiet.sqlite3",
        "REDIS_URL": "redis://127.0.0.1:9",
    }
    app = fresh_app(env)
    with caplog.at_level(logging.WARNING, logger="jobsvc.core.notices"), app.app_context():
        notices = listener()
        # Long enough for several attempts to subscribe (the first retries come within 3 s).
        time.sleep(3.5)

    assert not notices.connected.is_set()
    warnings = [r for r in caplog.records if "listener lost Redis" in r.getMessage()]
    assert len(warnings) == 1
