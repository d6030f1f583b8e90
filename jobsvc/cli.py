"""`flask --app wsgi jobs ...`: the same operations as the API, for operators at a shell.

Exit codes: 0 done (a waited-for job succeeded), 1 the job failed or was canceled or the
operation was refused, 2 bad usage (click's), 3 a wait ran out before the job finished.
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import delete

from . import store
from .database import write_transaction
from .extensions import db
from .models import TERMINAL_STATUSES, Job, JobStatus, utcnow
from .recovery import reconcile_command
from .schemas import JobSchema
from .service import WrongStatus, cancel_job, retry_job, submit_job

jobs_cli = AppGroup("jobs", help="Submit, inspect, cancel, retry and purge jobs.")
jobs_cli.add_command(reconcile_command)

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _load(event_id: str) -> Job:
    job = store.get_job(event_id.strip().lower())
    if job is None:
        raise click.ClickException(f"No job has event id {event_id}.")
    return job


def _echo_job(job: Job) -> None:
    click.echo(json.dumps(JobSchema().dump(job), indent=2, sort_keys=True))


def _wait(event_id: str, timeout: float) -> Job:
    """Poll until the job ends, showing each status change on stderr."""
    started, last = time.monotonic(), None
    while True:
        job = _load(event_id)
        db.session.rollback()  # end the read: the next poll must see a fresh snapshot
        if job.status != last:
            click.echo(f"[{time.monotonic() - started:5.1f}s] {job.status.value}", err=True)
            last = job.status
        if job.status in TERMINAL_STATUSES:
            return job
        if time.monotonic() - started > timeout:
            click.echo(
                f"Still {job.status.value} after {timeout:g}s; `jobs show {event_id}` later.", err=True
            )
            sys.exit(3)
        time.sleep(0.5)


@jobs_cli.command("submit")
@click.argument("text", required=False)
@click.option("--file", "path", type=click.File("r", encoding="utf-8"), help="Read the text from a file.")
@click.option("--wait", is_flag=True, help="Wait for the job, then print its summary and checklist.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --wait waits at most.")
def submit_command(text: str | None, path: click.utils.LazyFile | None, wait: bool, timeout: float) -> None:
    """Submit TEXT (or --file PATH) and print the event id."""
    if (text is None) == (path is None):
        raise click.UsageError("Give the text as an argument or with --file, not both.")
    text = path.read() if path is not None else text
    if not text or not text.strip():
        raise click.UsageError("The text is blank.")
    job, _ = submit_job(text)
    click.echo(job.id)
    if not wait:
        return
    job = _wait(job.id, timeout)
    if job.status is not JobStatus.SUCCEEDED:
        raise click.ClickException(f"Job {job.status.value}: {job.error}")
    click.echo(f"\nSummary ({job.provider}, {job.model}):\n{job.summary}\n\nChecklist:\n{job.checklist}")


@jobs_cli.command("show")
@click.argument("event_id")
def show_command(event_id: str) -> None:
    """Print one job as JSON."""
    _echo_job(_load(event_id))


@jobs_cli.command("list")
@click.option("--status", type=click.Choice([s.value for s in JobStatus]), help="Only jobs in this status.")
@click.option("--limit", default=20, show_default=True, help="How many, newest first.")
def list_command(status: str | None, limit: int) -> None:
    """List jobs, newest first: id, status, created, an excerpt of the input."""
    jobs, total = store.list_jobs(status=JobStatus(status) if status else None, limit=limit)
    for job in jobs:
        excerpt = " ".join(job.input_text.split())[:50]
        click.echo(f"{job.id}  {job.status.value:<9}  {job.created_at:%Y-%m-%d %H:%M:%S}  {excerpt}")
    click.echo(f"({len(jobs)} of {total})", err=True)


@jobs_cli.command("cancel")
@click.argument("event_id")
def cancel_command(event_id: str) -> None:
    """Cancel a pending job or stop a running one."""
    try:
        _echo_job(cancel_job(_load(event_id)))
    except WrongStatus as wrong:
        raise click.ClickException(str(wrong)) from None


@jobs_cli.command("retry")
@click.argument("event_id")
def retry_command(event_id: str) -> None:
    """Run a failed or canceled job again under the same id."""
    try:
        _echo_job(retry_job(_load(event_id)))
    except WrongStatus as wrong:
        raise click.ClickException(str(wrong)) from None


@jobs_cli.command("purge")
@click.option("--older-than", "age", required=True, help="Age of finished jobs to delete: 30d, 12h, 90m.")
@click.option("--dry-run", is_flag=True, help="Count, delete nothing.")
def purge_command(age: str, dry_run: bool) -> None:
    """Delete finished jobs older than the given age; unfinished jobs are never touched."""
    match = _DURATION.match(age.strip())
    if not match:
        raise click.BadParameter(
            "use a number and a unit, e.g. 30d, 12h, 90m, 45s", param_hint="--older-than"
        )
    cutoff = utcnow() - timedelta(**{_UNITS[match[2]]: int(match[1])})
    condition = Job.status.in_(TERMINAL_STATUSES) & (Job.finished_at < cutoff)
    if dry_run:
        count = store.count_where(condition)
        click.echo(f"{count} finished jobs are older than {age}; nothing deleted.")
        return
    with write_transaction() as session:
        count = session.execute(delete(Job).where(condition)).rowcount  # type: ignore[attr-defined]
    click.echo(f"Deleted {count} finished jobs older than {age}.")
