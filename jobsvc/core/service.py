"""What the API does with a submission: commit it, then hand it to the queue."""

from __future__ import annotations

import hashlib
import logging
import time

from flask import current_app
from redis.exceptions import RedisError
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job as RQJob

from jobsvc.core import metrics, store
from jobsvc.core.models import Job, JobStatus
from jobsvc.core.notices import listener, publish_finished
from jobsvc.core.queue import enqueue_delivery, enqueue_job, get_redis, queued_jobs
from jobsvc.errors import Overloaded, WrongStatus
from jobsvc.extensions import db

log = logging.getLogger(__name__)


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
    request = f"{input_text}\0{callback_url or ''}"
    request_hash = hashlib.sha256(request.encode()).hexdigest() if idempotency_key else None
    # A retried request gets its id back even when the queue is full.
    if idempotency_key is None or store.job_id_for_key(idempotency_key, owner) is None:
        pending = queued_jobs()
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


def cancel_job(job: Job) -> Job:
    """Cancel a pending job, or stop a running one; canceling twice is not an error."""
    if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        raise WrongStatus(job.id, job.status.value, "cancel")
    was_running = job.status is JobStatus.RUNNING
    if store.cancel_job(job.id):
        log.info("job %s status=canceled attempt=%d client=%s", job.id, job.attempts, job.owner or "-")
        metrics.job_finished(JobStatus.CANCELED)
        publish_finished(job.id)
        if job.callback_url:
            try:
                enqueue_delivery(job.id)  # the row says it is owed; this is the fast path
            except RedisError as exc:
                log.warning("job %s webhook owed, not queued yet: %s", job.id, type(exc).__name__)
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
