"""The RQ job function, called directly: checkpoints, idempotence, failures."""

from __future__ import annotations

import uuid

import pytest

from jobsvc.core import store
from jobsvc.core.models import JobStatus
from jobsvc.llm import Usage
from jobsvc.worker.tasks import run_job

pytestmark = pytest.mark.usefixtures("app_context")

NO_USAGE = Usage()


def new_job() -> tuple[str, str]:
    text = f"Wear gloves {uuid.uuid4()}."
    return store.create_job(text)[0].id, text


def test_a_second_run_pays_for_nothing(fake_llm):
    job_id, text = new_job()
    assert run_job(job_id) == "succeeded"
    assert run_job(job_id) == "skipped"

    assert len(fake_llm.state.calls_for(text)) == 2
    assert store.get_job(job_id).attempts == 1


def test_a_run_after_a_checkpoint_resumes_at_step_two(fake_llm):
    job_id, text = new_job()
    store.claim_job(job_id, "me", 10)
    store.save_summary(job_id, "me", f"Saved summary of {text}", "openai", "fake-model", NO_USAGE)
    store.release_lease(job_id)  # the run died; its worker released the lease

    assert run_job(job_id) == "succeeded"

    calls = fake_llm.state.calls_for(text)
    assert len(calls) == 1 and "checklist" in calls[0]["messages"][0]["content"]
    job = store.get_job(job_id)
    assert job.summary == f"Saved summary of {text}" and job.attempts == 2


def test_a_permanent_llm_error_fails_the_job_without_retrying(fake_llm):
    job_id, text = new_job()
    fake_llm.state.fail_next(401, matching=text)

    assert run_job(job_id) == "failed"

    job = store.get_job(job_id)
    assert job.status is JobStatus.FAILED and "OPENAI_API_KEY" in job.error
    assert job.finished_at is not None
    assert len(fake_llm.state.calls_for(text)) == 1  # not retried, not re-run


class BrokenProvider:
    """A provider with a bug in it."""

    name, model = "broken", "v0"

    def summarize(self, text: str) -> None:
        raise KeyError("a bug")


def test_an_unexpected_error_fails_the_job_and_reaches_rq(app):
    job_id, _ = new_job()
    app.extensions["jobsvc.llm"] = {"provider": BrokenProvider()}
    try:
        with pytest.raises(KeyError):
            run_job(job_id)
    finally:
        app.extensions.pop("jobsvc.llm")
    job = store.get_job(job_id)
    assert job.status is JobStatus.FAILED
    assert job.error == "Internal error while processing the job; see the worker log."
