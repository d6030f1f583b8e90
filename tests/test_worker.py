"""End to end: the API, a real worker process, real Redis and the fake LLM server."""

from __future__ import annotations

import uuid

from redis import Redis
from rq.job import Job as RQJob

from jobsvc import create_app
from tests.conftest import fresh_app, settings_from
from tests.support import submit, wait_for, wait_for_job
from tests.test_metrics import scrape


def test_job_succeeds_through_a_worker_in_exactly_two_llm_calls(e2e_client, worker, fake_llm):
    text = f"Wash your hands before work. Document {uuid.uuid4()} in the log."
    job = wait_for_job(e2e_client, submit(e2e_client, text))

    assert job["status"] == "succeeded", job
    assert job["summary"] == f"SUMMARY OF {text}"
    assert job["checklist"].splitlines() == ["- Act on: " + job["summary"][:80], "- Confirm it is done"]
    assert (job["provider"], job["model"], job["attempts"]) == ("openai", "fake-model", 1)
    summary_call, checklist_call = fake_llm.state.calls_for(text)
    assert summary_call["messages"][-1]["content"] == text
    # Step 2 sees the summary, not the raw input.
    assert checklist_call["messages"][-1]["content"] == job["summary"]


def test_rejected_api_key_fails_the_job_with_an_actionable_error(e2e_client, worker, fake_llm):
    text = f"Lock the door {uuid.uuid4()}."
    fake_llm.state.fail_next(401, matching=text)
    job = wait_for_job(e2e_client, submit(e2e_client, text))

    assert job["status"] == "failed"
    assert "rejected the API key" in job["error"] and "OPENAI_API_KEY" in job["error"]
    assert "sk-test" not in job["error"]


def test_offline_provider_works_with_no_api_key(start_worker, e2e_env, tmp_path):
    env = {**e2e_env, "DATABASE_URL": f"sqlite:///{tmp_path}/offline.sqlite3", "QUEUE_NAME": "offline"}
    app = fresh_app(env)
    start_worker(**{**env, "LLM_PROVIDER": "auto", "OPENAI_API_KEY": ""})
    client = app.test_client()

    text = "All staff must wear gloves. The canteen opened in 1999. Report spills at once."
    job = wait_for_job(client, submit(client, text))

    assert job["status"] == "succeeded", job
    assert (job["provider"], job["model"]) == ("offline", "extractive-v2")
    assert job["checklist"].splitlines() == ["- Wear gloves", "- Report spills at once"]


def _failures_counted(client) -> float:
    return scrape(client)[("jobsvc_jobs_finished_total", (("status", "failed"),))]


def test_a_run_canceled_mid_call_stays_canceled_when_the_llm_then_errors(e2e_client, worker, fake_llm):
    text = f"Lock the door {uuid.uuid4()}."
    fake_llm.state.delay = 3.0  # time to cancel, even on a busy machine
    fake_llm.state.fail_next(401, matching=text)  # answered after the delay, once canceled
    failures_before = _failures_counted(e2e_client)
    event_id = submit(e2e_client, text)
    wait_for(lambda: fake_llm.state.calls_for(text), what="the summarize call to be in flight")

    assert e2e_client.post(f"/jobs/{event_id}/cancel").status_code == 200
    ended = (f"job {event_id} run ended early", f"job {event_id} status=failed")
    wait_for(lambda: any(line in worker.log() for line in ended), what="the run to end")

    job = e2e_client.get(f"/jobs/{event_id}/").get_json()
    assert (job["status"], job["error"]) == ("canceled", "Canceled on request.")
    assert f"job {event_id} status=failed" not in worker.log()
    assert _failures_counted(e2e_client) == failures_before


def test_a_run_that_raises_is_not_run_again_by_rq(e2e_env, worker, fake_llm):
    # RQ takes the timeout from the enqueuing side: this app enqueues with JOB_TIMEOUT=1.
    client = create_app(settings_from({**e2e_env, "JOB_TIMEOUT": "1"})).test_client()
    fake_llm.state.delay = 2.0
    event_id = submit(client, f"Lock the door {uuid.uuid4()}.")
    rq_job = RQJob.fetch(event_id, connection=Redis.from_url(e2e_env["REDIS_URL"]))

    status = wait_for(lambda: (s := rq_job.get_status()) in {"failed", "finished"} and s, what="RQ to end it")

    assert wait_for_job(client, event_id)["status"] == "failed"
    assert status == "failed"  # in RQ's failed registry, no retry queued
    assert f"job {event_id} skipped" not in worker.log()
