"""The worker process: an RQ worker on QUEUE_NAME inside an app built by the factory."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.job import Job as RQJob

from . import store
from .config import timeout_warnings
from .llm import preload
from .notify import publish_finished
from .queue import blocking_redis, get_redis
from .recovery import Reconciler

log = logging.getLogger(__name__)


def wait_for_redis(app: Flask, poll_seconds: float = 0.5) -> None:
    """Block until Redis answers, saying every few seconds what it waits for."""
    last_said = 0.0
    while True:
        try:
            get_redis().ping()
            return
        except RedisError as exc:
            if time.monotonic() - last_said > 5:
                log.warning("waiting for Redis at %s: %s", _safe_url(app.config["REDIS_URL"]), exc)
                last_said = time.monotonic()
            time.sleep(poll_seconds)


def _safe_url(url: str) -> str:
    # Never log a password that the URL may carry.
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


def _horse_killed_handler(app: Flask) -> Any:
    """What to do when a work horse dies mid-job, before RQ's own retry requeues it."""

    def handle(job: RQJob, retpid: int, ret_val: int, rusage: Any) -> None:
        with app.app_context():
            ran_for = (
                (job.ended_at - job.started_at).total_seconds() if job.started_at and job.ended_at else 0
            )
            if ran_for > app.config["JOB_TIMEOUT"]:
                message = f"The job ran longer than JOB_TIMEOUT={app.config['JOB_TIMEOUT']}s and was stopped."
                if store.fail_job(job.id, message):
                    row = store.get_job(job.id)
                    publish_finished(job.id, row.callback_url if row else None)
            elif store.release_lease(job.id):
                log.warning("job %s status=pending: its work horse died; running it again", job.id)

    return handle


def run_worker(app: Flask, *, burst: bool = False) -> bool:
    """Work the queue until stopped (SIGTERM finishes the current job first)."""
    for warning in timeout_warnings(app.config):
        log.warning(warning)
    preload()
    with app.app_context():
        reconciler = Reconciler(app)
        reconciler.start()
        try:
            while True:
                wait_for_redis(app)
                connection = blocking_redis()
                worker = Worker(
                    [Queue(app.config["QUEUE_NAME"], connection=connection)],
                    connection=connection,
                    work_horse_killed_handler=_horse_killed_handler(app),
                )
                # Retry Redis every few seconds, not RQ's default of up to a minute.
                worker.max_connection_wait_time = 5.0
                try:
                    # The scheduler (one per queue, by lock) runs delayed retries: webhook backoff.
                    worked = worker.work(
                        burst=burst, logging_level=app.config["LOG_LEVEL"], with_scheduler=True
                    )
                except RedisError as exc:
                    log.warning("worker lost Redis (%s); starting over when it is back", exc)
                    continue
                # RQ's work() also returns after logging an unexpected error (Redis vanishing
                # mid-job, say). Only a requested stop (SIGTERM or SIGINT: RQ records when, busy
                # or idle), or the end of a burst, ends this process.
                if burst or worker._shutdown_requested_date is not None:
                    return worked
                log.warning("worker loop ended without a stop request; starting a new one")
                time.sleep(1)
        finally:
            reconciler.stop()
