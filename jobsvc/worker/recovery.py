"""Recovery: find jobs that the database promises but no worker will run, and queue them again."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from flask import Flask
from redis.exceptions import RedisError
from rq.job import Job as RQJob
from rq.job import JobStatus as RQStatus

from jobsvc.core import store, workers
from jobsvc.core.models import utcnow
from jobsvc.core.queue import enqueue_delivery, enqueue_job, get_queue, get_redis, get_webhooks_queue

log = logging.getLogger(__name__)

# States in which RQ will still hand the job to a worker by itself.
_LIVE = {RQStatus.QUEUED, RQStatus.SCHEDULED, RQStatus.DEFERRED}
# The web commits, then enqueues: give a fresh pending job that long to appear in Redis.
ENQUEUE_GRACE_SECONDS = 2.0


@dataclass
class ReconcileReport:
    """What one pass did."""

    expired: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.expired or self.requeued or self.webhooks)


def reconcile(lease_seconds: int, min_age: float = ENQUEUE_GRACE_SECONDS) -> ReconcileReport:
    """Release expired leases, enqueue every pending job (unchanged for `min_age` seconds)
    that has no live queue state, and queue every due webhook delivery that is not queued."""
    report = ReconcileReport()
    _queue_owed_webhooks(report)
    for job_id in store.expired_leases():
        # The run that held the lease is dead, whatever RQ still says about it.
        if store.release_lease(job_id, only_expired=True):
            report.expired.append(job_id)
            if enqueue_job(job_id, replace=True):
                report.requeued.append(job_id)
    now = utcnow()
    pending = store.pending_jobs(older_than=now - timedelta(seconds=min_age))
    if not pending:
        return report
    rq_jobs = RQJob.fetch_many([job_id for job_id, _ in pending], connection=get_redis())
    statuses = [rq_job.get_status(refresh=False) if rq_job is not None else None for rq_job in rq_jobs]
    queue = get_queue()
    settled = now - timedelta(seconds=lease_seconds)
    # The whole queue is read only when a job it should hold has been "queued" that long.
    suspect = any(s == RQStatus.QUEUED and u <= settled for (_, u), s in zip(pending, statuses, strict=True))
    waiting = set(queue.get_job_ids()) if suspect else set()
    for (job_id, updated_at), rq_job, status in zip(pending, rq_jobs, statuses, strict=True):
        if job_id in report.requeued:
            continue
        if status == RQStatus.QUEUED and updated_at <= settled and job_id not in waiting:
            # "queued", yet off the queue: a worker took it (RQ 3.0 moves it to the queue's
            # intermediate list) and its host died before starting it. RQ's own clean-up of
            # that list comes with its maintenance, minutes later, and fails the job.
            get_redis().lrem(queue.intermediate_queue_key, 0, job_id)
        elif status in _LIVE:
            continue
        # "started" while the row is pending: a worker is claiming it, or died before it could.
        if status == RQStatus.STARTED and updated_at > settled:
            continue
        if enqueue_job(job_id, replace=rq_job is not None):
            report.requeued.append(job_id)
    return report


def _queue_owed_webhooks(report: ReconcileReport) -> None:
    # Due per the row (the outbox) but not waiting in Redis: lost with Redis, or never queued.
    owed = store.owed_webhooks(utcnow())
    if not owed:
        return
    queued = set(get_webhooks_queue().get_job_ids())
    for job_id in owed:
        if f"webhook-{job_id}" not in queued and enqueue_delivery(job_id):
            report.webhooks.append(job_id)


class Reconciler(threading.Thread):
    """Runs `reconcile` every RECONCILE_INTERVAL; across workers, one pass at a time."""

    def __init__(self, app: Flask) -> None:
        super().__init__(name="jobsvc-reconciler", daemon=True)
        self.app = app
        self.stopped = threading.Event()
        self.worker_name = f"{workers.host_label(app.config)}:{os.getpid()}"

    def run(self) -> None:
        interval = self.app.config["RECONCILE_INTERVAL"]
        while True:
            try:
                self.run_once()
            except RedisError as exc:
                # Redis being away is not a bug: one line, no traceback; the next pass tries again.
                log.warning("reconciler pass skipped: Redis does not answer (%s)", type(exc).__name__)
            except Exception:
                # The database may be down; the next pass tries again.
                log.exception("reconciler pass failed")
            if self.stopped.wait(interval):
                self._leave()
                return

    def run_once(self) -> ReconcileReport | None:
        """Say this worker is alive; then one pass, unless another worker's reconciler has the lock."""
        with self.app.app_context():
            interval = self.app.config["RECONCILE_INTERVAL"]
            workers.beat(
                get_redis(), self.app.config["QUEUE_NAME"], self.worker_name, expires_after=interval * 3
            )
            interval_ms = max(int(interval * 1000) - 100, 100)
            lock = f"jobsvc:{self.app.config['QUEUE_NAME']}:reconciler"
            if not get_redis().set(lock, self.name, nx=True, px=interval_ms):
                return None
            report = reconcile(self.app.config["LEASE_SECONDS"])
            if report:
                log.warning(
                    "reconciler: released %d expired leases, re-enqueued %d jobs (%s), queued %d webhooks",
                    len(report.expired),
                    len(report.requeued),
                    ", ".join(report.requeued[:10]),
                    len(report.webhooks),
                )
            return report

    def _leave(self) -> None:
        try:
            with self.app.app_context():
                workers.leave(get_redis(), self.app.config["QUEUE_NAME"], self.worker_name)
        except Exception:
            log.info("could not take worker %s off the live list; it drops off by itself", self.worker_name)

    def stop(self) -> None:
        """Ask the thread to finish after its current pass."""
        self.stopped.set()
