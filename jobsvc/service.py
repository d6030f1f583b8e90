"""What the API does with a submission: commit it, then hand it to the queue."""

from __future__ import annotations

import hashlib
import logging

from flask import current_app
from redis.exceptions import RedisError

from . import store
from .models import Job
from .queue import enqueue_job

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """More jobs wait than MAX_PENDING_JOBS allows."""

    def __init__(self, pending: int) -> None:
        super().__init__(pending)
        self.pending = pending


def submit_job(input_text: str, idempotency_key: str | None = None) -> tuple[Job, bool]:
    """Persist a new job, then enqueue it; the row is the promise, Redis only carries work.

    Returns the job and whether it is new (False: the key's earlier job, replayed).
    """
    request_hash = hashlib.sha256(input_text.encode()).hexdigest() if idempotency_key else None
    # A retried request gets its id back even when the queue is full.
    if idempotency_key is None or store.job_id_for_key(idempotency_key) is None:
        pending = store.count_pending()
        if pending >= current_app.config["MAX_PENDING_JOBS"]:
            raise Overloaded(pending)
    job, created = store.create_job(input_text, idempotency_key, request_hash)
    if not created:
        return job, False
    try:
        enqueue_job(job.id)
    except RedisError as exc:
        # The row is committed as pending; the reconciler enqueues it once Redis is back.
        log.warning("job %s accepted but not queued yet: %s", job.id, type(exc).__name__)
    log.info("job %s status=pending attempt=0", job.id)
    return job, True
