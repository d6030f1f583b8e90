"""Recovery: find jobs that the database promises but no worker will run, and queue them again."""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from redis.exceptions import RedisError
from rq.job import Job as RQJob
from rq.job import JobStatus as RQStatus

from . import store
from .health import heartbeat_key
from .models import utcnow
from .queue import enqueue_job, get_redis

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

    def __bool__(self) -> bool:
        return bool(self.expired or self.requeued)


def reconcile(lease_seconds: int, min_age: float = ENQUEUE_GRACE_SECONDS) -> ReconcileReport:
    """Release expired leases, then enqueue every pending job (unchanged for `min_age`
    seconds) that has no live queue state."""
    report = ReconcileReport()
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
    for (job_id, updated_at), rq_job in zip(pending, rq_jobs, strict=True):
        if job_id in report.requeued:
            continue
        status = rq_job.get_status(refresh=False) if rq_job is not None else None
        if status in _LIVE:
            continue
        # "started" while the row is pending: a worker is claiming it, or died before it could.
        if status == RQStatus.STARTED and updated_at > now - timedelta(seconds=lease_seconds):
            continue
        if enqueue_job(job_id, replace=rq_job is not None):
            report.requeued.append(job_id)
    return report


class Reconciler(threading.Thread):
    """Runs `reconcile` every RECONCILE_INTERVAL; across workers, one pass at a time."""

    def __init__(self, app: Flask) -> None:
        super().__init__(name="jobsvc-reconciler", daemon=True)
        self.app = app
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = self.app.config["RECONCILE_INTERVAL"]
        while True:
            try:
                self.run_once()
            except Exception:
                # Redis or the database may be down; the next pass tries again.
                log.exception("reconciler pass failed")
            if self.stopped.wait(interval):
                return

    def run_once(self) -> ReconcileReport | None:
        """Say this worker is alive; then one pass, unless another worker's reconciler has the lock."""
        with self.app.app_context():
            interval = self.app.config["RECONCILE_INTERVAL"]
            alive = heartbeat_key(self.app.config["QUEUE_NAME"], f"{socket.gethostname()}:{os.getpid()}")
            get_redis().set(alive, utcnow().isoformat(), px=int(interval * 3000))
            interval_ms = max(int(interval * 1000) - 100, 100)
            lock = f"jobsvc:{self.app.config['QUEUE_NAME']}:reconciler"
            if not get_redis().set(lock, self.name, nx=True, px=interval_ms):
                return None
            report = reconcile(self.app.config["LEASE_SECONDS"])
            if report:
                log.warning(
                    "reconciler: released %d expired leases, re-enqueued %d jobs: %s",
                    len(report.expired),
                    len(report.requeued),
                    ", ".join(report.requeued[:10]),
                )
            return report

    def stop(self) -> None:
        """Ask the thread to finish after its current pass."""
        self.stopped.set()


@click.command("reconcile")
@click.option(
    "--min-age",
    type=float,
    default=ENQUEUE_GRACE_SECONDS,
    show_default=True,
    help="Leave pending jobs younger than this many seconds alone (they may be enqueued right now).",
)
@with_appcontext
def reconcile_command(min_age: float) -> None:
    """Re-enqueue jobs whose worker died or whose queue entry was lost."""
    try:
        report = reconcile(current_app.config["LEASE_SECONDS"], min_age)
    except RedisError as exc:
        raise click.ClickException(f"Redis is not reachable ({exc}); nothing was re-enqueued.") from exc
    click.echo(f"Released {len(report.expired)} expired leases; re-enqueued {len(report.requeued)} jobs.")
