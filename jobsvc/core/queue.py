"""The work queue: Redis connections, RQ queues, and handing a job id to the workers."""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask, current_app
from redis import Redis
from redis.client import Pipeline
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job as RQJob

log = logging.getLogger(__name__)

# The worker side's functions, named by dotted path: the queue carries names, not code.
RUN_JOB = "jobsvc.worker.tasks.run_job"
DELIVER_WEBHOOK = "jobsvc.worker.deliveries.deliver_webhook"


def tls_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """redis-py options for REDIS_URL's TLS, shared by every client jobsvc makes (rate limiter included).

    `rediss://` needs nothing more while the certificate verifies. REDIS_TLS_VERIFY=false
    accepts any certificate, as Heroku Redis's self-signed one requires: encrypted, but not
    authenticated.
    """
    if not config["REDIS_URL"].startswith("rediss://") or config["REDIS_TLS_VERIFY"]:
        return {}
    return {"ssl_cert_reqs": "none", "ssl_check_hostname": False}


def explain_redis_error(exc: BaseException) -> str:
    """What went wrong talking to Redis, and what to do when it was Redis's certificate."""
    causes = [exc, exc.__cause__, exc.__context__]
    if any(isinstance(cause, ssl.SSLCertVerificationError) for cause in causes) or (
        "CERTIFICATE_VERIFY_FAILED" in str(exc)
    ):
        return (
            f"{exc} Redis's TLS certificate did not verify; if your Redis provider uses a self-signed "
            "certificate (Heroku Redis does), set REDIS_TLS_VERIFY=false."
        )
    return str(exc)


def get_redis() -> Redis:
    """This process's Redis client for the current app (a fresh one after a fork)."""
    state = current_app.extensions["jobsvc.redis"]
    if state.get("pid") != os.getpid():
        state["client"] = Redis.from_url(
            current_app.config["REDIS_URL"],
            socket_connect_timeout=2,
            socket_timeout=10,
            health_check_interval=30,
            **tls_options(current_app.config),
        )
        state["pid"] = os.getpid()
    return state["client"]


def blocking_redis() -> Redis:
    """A Redis client for RQ's worker loop: no read timeout, since BLPOP waits minutes by design."""
    # Health checks, not TCP keepalive: the embedded Redis is a unix socket, which has none.
    return Redis.from_url(
        current_app.config["REDIS_URL"],
        socket_connect_timeout=2,
        health_check_interval=30,
        **tls_options(current_app.config),
    )


def get_queue() -> Queue:
    """The RQ queue named by QUEUE_NAME."""
    return Queue(current_app.config["QUEUE_NAME"], connection=get_redis())


def webhooks_queue_name(queue_name: str) -> str:
    """Deliveries have a queue of their own, so a slow receiver can never hold up jobs."""
    return f"{queue_name}-webhooks"


def get_webhooks_queue() -> Queue:
    """The RQ queue of webhook deliveries."""
    return Queue(webhooks_queue_name(current_app.config["QUEUE_NAME"]), connection=get_redis())


def queued_jobs() -> int:
    """Jobs waiting in the queue for a worker (LLEN: O(1)); raises RedisError when Redis is away."""
    return get_queue().count


# How long RQ keeps a run's record: an hour once it ended, a week once it failed.
_RUN_JOB_TTLS = {"result_ttl": 3600, "failure_ttl": 7 * 24 * 3600}


def _description(job_id: str) -> str:
    return f"run_job({job_id!r})"


def enqueue_job(job_id: str, *, replace: bool = False) -> bool:
    """Queue `run_job(job_id)` under the same id; False if that id is already queued or running.

    With `replace`, a leftover RQ job of that id (failed, stopped, finished) is deleted first.
    """
    queue = get_queue()
    if replace:
        with contextlib.suppress(NoSuchJobError):
            RQJob.fetch(job_id, connection=queue.connection).delete(remove_from_queue=True)
    try:
        queue.enqueue(
            RUN_JOB,
            job_id,
            job_id=job_id,
            unique=True,
            job_timeout=current_app.config["JOB_TIMEOUT"],
            # No RQ Retry: a run that raised has already failed its row, so a retry could only
            # be skipped. Leases and the reconciler alone re-run jobs (see MAX_ATTEMPTS).
            description=_description(job_id),
            **_RUN_JOB_TTLS,
        )
    except DuplicateJobError:
        return False
    return True


def enqueue_jobs(job_ids: Sequence[str], pipeline: Pipeline) -> None:
    """Queue `run_job(id)` for each new job onto `pipeline`; the caller executes it, one round trip.

    For ids that were just created, so never queued: a plain enqueue under the job's id,
    without RQ's unique-enqueue script (the database row already makes the id unique).
    The options are enqueue_job's (RQ names the job timeout `timeout` here).
    """
    queue = get_queue()
    options = {"timeout": current_app.config["JOB_TIMEOUT"], **_RUN_JOB_TTLS}
    queue.enqueue_many(
        [
            Queue.prepare_data(RUN_JOB, (job_id,), job_id=job_id, description=_description(job_id), **options)
            for job_id in job_ids
        ],
        pipeline=pipeline,
    )


def enqueue_delivery(job_id: str) -> bool:
    """Queue a delivery attempt of the job's owed webhook; False if one is already queued.

    The row says what is owed and when (`webhook_due_at`, retries included); this is only
    the fast path, and the reconciler queues whatever is due and not queued.
    """
    queue = get_webhooks_queue()
    options = {
        "job_id": f"webhook-{job_id}",
        "result_ttl": 0,
        "failure_ttl": 24 * 3600,
        "description": f"deliver_webhook({job_id!r})",
    }
    with contextlib.suppress(NoSuchJobError):
        previous = RQJob.fetch(options["job_id"], connection=queue.connection)
        if previous.get_status(refresh=False) in {"queued", "scheduled", "deferred"}:
            return False
        previous.delete(remove_from_queue=True)
    queue.enqueue(DELIVER_WEBHOOK, job_id, **options)
    return True


def init_app(app: Flask) -> None:
    """Give the app its per-process Redis slot."""
    app.extensions["jobsvc.redis"] = {}
