"""What the API does with a submission: commit it, then hand it to the queue."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from . import store
from .models import Job
from .queue import enqueue_job

log = logging.getLogger(__name__)


def submit_job(input_text: str) -> Job:
    """Persist a new job, then enqueue it; the row is the promise, Redis only carries work."""
    job = store.create_job(input_text)
    try:
        enqueue_job(job.id)
    except RedisError as exc:
        # The row is committed as pending; the reconciler enqueues it once Redis is back.
        log.warning("job %s accepted but not queued yet: %s", job.id, type(exc).__name__)
    log.info("job %s status=pending", job.id)
    return job
