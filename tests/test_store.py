"""Job persistence: guarded transitions and UTC timestamps."""

from __future__ import annotations

import pytest

from jobsvc import store
from jobsvc.models import JobStatus

pytestmark = pytest.mark.usefixtures("app_context")


def test_new_jobs_are_pending_with_aware_utc_timestamps():
    job = store.get_job(store.create_job("Wear gloves.").id)
    assert job.status is JobStatus.PENDING
    assert job.created_at.utcoffset().total_seconds() == 0
    assert job.created_at == job.updated_at


def test_claim_marks_running_counts_the_attempt_and_moves_updated_at():
    created = store.create_job("Wear gloves.")
    created_at = created.updated_at
    claimed = store.claim_job(created.id)

    assert claimed.status is JobStatus.RUNNING
    assert claimed.attempts == 1
    assert claimed.started_at is not None
    assert claimed.updated_at > created_at


def test_a_finished_job_cannot_be_claimed_or_overwritten():
    job_id = store.create_job("Wear gloves.").id
    store.claim_job(job_id)
    store.save_summary(job_id, "S", "offline", "m")
    assert store.complete_job(job_id, "- a")

    assert store.claim_job(job_id) is None
    assert not store.fail_job(job_id, "late failure")
    job = store.get_job(job_id)
    assert (job.status, job.checklist, job.error) == (JobStatus.SUCCEEDED, "- a", None)
    assert job.finished_at >= job.started_at


def test_unknown_ids_are_not_claimed():
    assert store.claim_job("00000000-0000-4000-8000-000000000000") is None


def test_status_values_are_the_documented_strings():
    assert [s.value for s in JobStatus] == ["pending", "running", "succeeded", "failed"]
    assert JobStatus.FAILED.is_terminal and not JobStatus.RUNNING.is_terminal
