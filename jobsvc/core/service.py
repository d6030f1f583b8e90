"""What the API does with a submission: commit it, then hand it to the queue."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence

from flask import current_app
from redis.exceptions import RedisError
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job as RQJob

from jobsvc.core import metrics, store
from jobsvc.core.group_commit import Entry, GroupCommit
from jobsvc.core.models import Job, JobStatus
from jobsvc.core.notices import listener, publish_finished
from jobsvc.core.queue import enqueue_delivery, enqueue_job, enqueue_jobs, get_redis, queued_jobs
from jobsvc.core.store import NewJob
from jobsvc.errors import Overloaded, WrongStatus
from jobsvc.extensions import db

log = logging.getLogger(__name__)


def waiting_jobs() -> int:
    """How many jobs wait for a worker, for MAX_PENDING_JOBS: the queue's length, or, while
    Redis is away, the pending rows, which are then the only record of them."""
    # LLEN is O(1); counting pending rows costs the database an index scan that grows
    # with the backlog, so it is only the fallback.
    try:
        return queued_jobs()
    except RedisError:
        return store.count_where(Job.status == JobStatus.PENDING)


def submit_job(
    input_text: str,
    idempotency_key: str | None = None,
    callback_url: str | None = None,
    *,
    owner: str = "",
) -> tuple[Job, bool]:
    """Persist a new job for `owner` (an API key's name), then enqueue it; the row is the promise.

    Returns the job and whether it is new (False: the key's earlier job, replayed).
    """
    if idempotency_key is None:
        # Concurrent submissions in this process share one transaction and one pipeline.
        return _submit_together(input_text, callback_url, owner), True
    request = f"{input_text}\0{callback_url or ''}"
    request_hash = hashlib.sha256(request.encode()).hexdigest()
    # A retried request gets its id back even when the queue is full.
    if store.job_id_for_key(idempotency_key, owner) is None:
        pending = waiting_jobs()
        if pending >= current_app.config["MAX_PENDING_JOBS"]:
            raise Overloaded(pending)
    job, created = store.create_job(input_text, idempotency_key, request_hash, callback_url, owner=owner)
    if not created:
        return job, False
    try:
        enqueue_job(job.id)
    except RedisError as exc:
        # The row is committed as pending; the reconciler enqueues it once Redis is back.
        log.warning("job %s accepted but not queued yet: %s", job.id, type(exc).__name__)
    log.info("job %s status=pending attempt=0 client=%s", job.id, owner or "-")
    metrics.job_created(owner)
    return job, True


def submit_jobs(
    items: Sequence[tuple[str, str | None]], idempotency_key: str | None = None, *, owner: str = ""
) -> tuple[list[str], bool]:
    """Persist a batch of (input_text, callback_url) in one transaction, then enqueue it in one pipeline.

    All or nothing. Returns the ids in item order and whether they are new (False: the key's
    earlier batch, replayed).
    """
    jobs = [NewJob(text, callback_url, owner) for text, callback_url in items]
    request_hash = None
    if idempotency_key is not None:
        # Marked as a batch, so a key first used for one job never matches a batch, nor the reverse.
        body = json.dumps(["batch", [[job.input_text, job.callback_url or ""] for job in jobs]])
        request_hash = hashlib.sha256(body.encode()).hexdigest()
    if idempotency_key is None or store.job_id_for_key(idempotency_key, owner) is None:
        pending = waiting_jobs()
        if pending + len(jobs) > current_app.config["MAX_PENDING_JOBS"]:
            raise Overloaded(pending)
    ids, created = store.create_jobs(jobs, idempotency_key, request_hash)
    if created:
        _enqueue_accepted(ids, jobs)
    return ids, created


def _submit_together(input_text: str, callback_url: str | None, owner: str = "") -> Job:
    """Accept one job through this process's group commit: one transaction for all that arrive together.

    Answers once the job's row is committed.
    """
    job_id = _group_commit().submit(NewJob(input_text, callback_url, owner))
    assert isinstance(job_id, str)
    return Job(
        id=job_id, input_text=input_text, callback_url=callback_url, owner=owner, status=JobStatus.PENDING
    )


_committers_lock = threading.Lock()


def _group_commit() -> GroupCommit[NewJob]:
    """This process's group commit for the current app (a fresh one after a fork)."""
    slot = current_app.extensions.setdefault("jobsvc.group_commit", {})
    committer = slot.get(os.getpid())
    if committer is None:
        with _committers_lock:
            committer = slot.setdefault(os.getpid(), GroupCommit(_accept_together))
    return committer


def _accept_together(entries: list[Entry[NewJob]]) -> None:
    """Flush of the group commit: one queue-length check, one transaction, one Redis pipeline."""
    pending = waiting_jobs()
    limit = current_app.config["MAX_PENDING_JOBS"]
    accepted: list[Entry[NewJob]] = []
    for entry in entries:
        if pending + len(accepted) >= limit:
            entry.error = Overloaded(pending + len(accepted))
        else:
            accepted.append(entry)
    if not accepted:
        return
    jobs = [entry.item for entry in accepted]
    ids, _ = store.create_jobs(jobs)
    for entry, job_id in zip(accepted, ids, strict=True):
        entry.result = job_id
    _enqueue_accepted(ids, jobs)


def _enqueue_accepted(job_ids: list[str], jobs: Sequence[NewJob]) -> None:
    """Queue committed jobs and count them, in one Redis round trip."""
    by_client = Counter(job.owner for job in jobs)
    for job_id, job in zip(job_ids, jobs, strict=True):
        log.info("job %s status=pending attempt=0 client=%s", job_id, job.owner or "-")
    try:
        pipeline = get_redis().pipeline()
        enqueue_jobs(job_ids, pipeline)
        metrics.jobs_accepted(by_client, pipeline)
        pipeline.execute()
    except RedisError as exc:
        # The rows are committed as pending; the reconciler enqueues them once Redis is back.
        log.warning("%d jobs accepted but not queued yet: %s", len(job_ids), type(exc).__name__)


def announce_end(job_id: str, callback_url: str | None) -> None:
    """What a job's end causes beyond its row: waiting clients hear of it, its webhook is queued.

    Both are fast paths: a lost notice means a waiter re-reads the database, and the row
    already says the webhook is owed, so the reconciler queues it if this enqueue is lost.
    """
    publish_finished(job_id)
    if callback_url:
        try:
            enqueue_delivery(job_id)
        except RedisError as exc:
            log.warning("job %s webhook owed, not queued yet: %s", job_id, type(exc).__name__)


def cancel_job(job: Job) -> Job:
    """Cancel a pending job, or stop a running one; canceling twice is not an error."""
    if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        raise WrongStatus(job.id, job.status.value, "cancel")
    was_running = job.status is JobStatus.RUNNING
    if store.cancel_job(job.id):
        log.info("job %s status=canceled attempt=%d client=%s", job.id, job.attempts, job.owner or "-")
        metrics.job_finished(JobStatus.CANCELED)
        announce_end(job.id, job.callback_url)
        try:
            if was_running:
                # RQ marks it stopped; the run's next write is refused by the status guard,
                # so it stops before its next LLM call.
                send_stop_job_command(get_redis(), job.id)
            else:
                RQJob.fetch(job.id, connection=get_redis()).cancel()
        except (RedisError, InvalidJobOperation, NoSuchJobError) as exc:
            log.info("job %s canceled in the database; queue says %s", job.id, type(exc).__name__)
    return _reloaded(job)


def retry_job(job: Job) -> Job:
    """Run a failed or canceled job again under the same id; retrying twice is not an error."""
    if job.status is JobStatus.SUCCEEDED:
        raise WrongStatus(job.id, job.status.value, "retry")
    if store.reopen_job(job.id):
        log.info("job %s status=pending attempt=%d (retry) client=%s", job.id, job.attempts, job.owner or "-")
        try:
            enqueue_job(job.id, replace=True)
        except RedisError as exc:
            log.warning("job %s reopened but not queued yet: %s", job.id, type(exc).__name__)
    return _reloaded(job)


def _reloaded(job: Job) -> Job:
    fresh = store.get_job(job.id)
    assert fresh is not None  # jobs are never deleted while a request holds one
    return fresh


def wait_for_job(job: Job, timeout: float) -> Job:
    """The job once it is terminal, or as it is when `timeout` seconds have passed.

    No database connection is held while waiting. Past MAX_WAITERS waiting requests in this
    process, the job as it is now, at once (the client polls again after Retry-After).
    """
    deadline = time.monotonic() + timeout
    notices = listener()
    with notices.watch(job.id) as finished:
        if finished is None:
            fresh = store.get_job(job.id) or job
            db.session.remove()
            return fresh
        while True:
            fresh = store.get_job(job.id) or job
            db.session.remove()
            remaining = deadline - time.monotonic()
            if fresh.status.is_terminal or remaining <= 0:
                return fresh
            # Without a live subscription, look at the database once a second instead.
            finished.wait(remaining if notices.connected.is_set() else min(1.0, remaining))
            finished.clear()
