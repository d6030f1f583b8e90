"""Job persistence: guarded transitions and UTC timestamps."""

from __future__ import annotations

import pytest

from jobsvc.core import store
from jobsvc.core.models import JobStatus
from jobsvc.llm import Usage

pytestmark = pytest.mark.usefixtures("app_context")

NO_USAGE = Usage()


def test_new_jobs_are_pending_with_aware_utc_timestamps():
    job = store.get_job(store.create_job("Wear gloves.")[0].id)
    assert job.status is JobStatus.PENDING
    assert job.created_at.utcoffset().total_seconds() == 0
    assert job.created_at == job.updated_at


def test_claim_marks_running_counts_the_attempt_and_moves_updated_at():
    created, _ = store.create_job("Wear gloves.")
    created_at = created.updated_at
    claimed = store.claim_job(created.id, "me", 10)

    assert claimed.status is JobStatus.RUNNING
    assert claimed.attempts == 1
    assert claimed.started_at is not None
    assert claimed.updated_at > created_at


def test_a_finished_job_cannot_be_claimed_or_overwritten():
    job_id = store.create_job("Wear gloves.")[0].id
    store.claim_job(job_id, "me", 10)
    store.save_summary(job_id, "me", "S", "offline", "m", NO_USAGE)
    assert store.complete_job(job_id, "me", "- a", NO_USAGE)

    assert store.claim_job(job_id, "me", 10) is None
    assert not store.fail_job(job_id, "late failure")
    job = store.get_job(job_id)
    assert (job.status, job.checklist, job.error) == (JobStatus.SUCCEEDED, "- a", None)
    assert job.finished_at >= job.started_at


def test_unknown_ids_are_not_claimed():
    assert store.claim_job("00000000-0000-4000-8000-000000000000", "me", 10) is None


def test_status_values_are_the_documented_strings():
    assert [s.value for s in JobStatus] == ["pending", "running", "succeeded", "failed", "canceled"]
    assert JobStatus.FAILED.is_terminal and not JobStatus.RUNNING.is_terminal


def test_a_live_lease_keeps_other_workers_out_until_it_expires():
    job_id = store.create_job("Wear gloves.")[0].id
    assert store.claim_job(job_id, "first", 10)

    assert store.claim_job(job_id, "second", 10) is None
    assert not store.save_summary(job_id, "second", "S", "offline", "m", NO_USAGE)
    assert store.renew_lease(job_id, "first", 0)  # let the lease lapse now

    assert store.claim_job(job_id, "second", 10).lease_owner == "second"
    assert not store.renew_lease(job_id, "first", 10)
    assert not store.complete_job(job_id, "first", "- stale worker's result", NO_USAGE)


def test_an_idempotency_key_returns_its_first_job():
    first, created = store.create_job("Wear gloves.", "key-1", "hash-a")
    again, created_again = store.create_job("Wear gloves.", "key-1", "hash-a")

    assert (created, created_again) == (True, False)
    assert again.id == first.id
    with pytest.raises(store.IdempotencyConflict):
        store.create_job("Other text.", "key-1", "hash-b")
