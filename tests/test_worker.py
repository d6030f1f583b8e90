"""End to end: the API, a real worker process, real Redis and the fake LLM server."""

from __future__ import annotations

import uuid

from tests.conftest import fresh_app
from tests.support import submit, wait_for_job


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
