"""The same service on PostgreSQL: schema, transitions, and a job through a real worker."""

from __future__ import annotations

import uuid

import pytest

from jobsvc.core import store
from jobsvc.core.models import JobStatus
from jobsvc.llm import Usage
from tests.conftest import free_port, fresh_app
from tests.postgres import running_postgres, server_binaries
from tests.support import submit, wait_for_job

pytestmark = pytest.mark.skipif(
    server_binaries() is None,
    reason="PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql",
)

NO_USAGE = Usage()


@pytest.fixture(scope="module")
def postgres_env(stack_env):
    with running_postgres(free_port()) as url:
        yield {**stack_env, "DATABASE_URL": url, "QUEUE_NAME": "test-postgres"}


@pytest.fixture(scope="module")
def pg_app(postgres_env):
    app = fresh_app(postgres_env)
    return app


def test_transitions_keep_utc_and_guard_finished_jobs(pg_app):
    with pg_app.app_context():
        job_id = store.create_job("Wear gloves.")[0].id
        assert store.claim_job(job_id, "me", 10).status is JobStatus.RUNNING
        assert store.save_summary(job_id, "me", "S", "offline", "m", NO_USAGE)
        assert store.complete_job(job_id, "me", "- a", NO_USAGE)
        assert store.claim_job(job_id, "me", 10) is None
        job = store.get_job(job_id)
        assert job.status is JobStatus.SUCCEEDED
        assert job.finished_at.utcoffset().total_seconds() == 0


def test_a_job_succeeds_through_a_worker_on_postgres(pg_app, postgres_env, start_worker, fake_llm):
    worker = start_worker(**postgres_env)
    client = pg_app.test_client()
    text = f"Lock the door {uuid.uuid4()}."
    try:
        job = wait_for_job(client, submit(client, text))
    finally:
        worker.stop()  # before this module's PostgreSQL goes away

    assert job["status"] == "succeeded", job
    assert len(fake_llm.state.calls_for(text)) == 2
