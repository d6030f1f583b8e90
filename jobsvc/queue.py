"""The work queue: Redis connections, RQ queues, and handing a job id to the workers."""

from __future__ import annotations

import logging
import os

from flask import current_app
from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError

log = logging.getLogger(__name__)


def get_redis() -> Redis:
    """This process's Redis client for the current app (a fresh one after a fork)."""
    state = current_app.extensions["jobsvc.redis"]
    if state.get("pid") != os.getpid():
        state["client"] = Redis.from_url(
            current_app.config["REDIS_URL"],
            socket_connect_timeout=5,
            socket_timeout=10,
            health_check_interval=30,
        )
        state["pid"] = os.getpid()
    return state["client"]


def get_queue() -> Queue:
    """The RQ queue named by QUEUE_NAME."""
    return Queue(current_app.config["QUEUE_NAME"], connection=get_redis())


def enqueue_job(job_id: str) -> bool:
    """Queue `run_job(job_id)` under the same id; False if that id is already queued or running."""
    from .tasks import run_job

    try:
        get_queue().enqueue(
            run_job,
            job_id,
            job_id=job_id,
            unique=True,
            job_timeout=current_app.config["JOB_TIMEOUT"],
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
            description=f"run_job({job_id!r})",
        )
    except DuplicateJobError:
        return False
    return True


def init_app(app: object) -> None:
    """Give the app its per-process Redis slot."""
    app.extensions["jobsvc.redis"] = {}  # type: ignore[attr-defined]
