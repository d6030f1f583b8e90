"""Every command line jobsvc has: `flask --app wsgi jobs ...` and `flask --app wsgi init-db`.

The same operations as the API, for operators at a shell. Exit codes: 0 done (a
waited-for job succeeded), 1 the job failed or was canceled or the operation was
refused, 2 bad usage (click's) or a bad setting, 3 a wait ran out before the job finished.
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import timedelta
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from marshmallow import ValidationError
from redis.exceptions import RedisError

from jobsvc.core import store
from jobsvc.core.database import create_schema
from jobsvc.core.models import TERMINAL_STATUSES, Job, JobStatus, utcnow
from jobsvc.core.representation import JobSchema
from jobsvc.core.service import cancel_job, retry_job, submit_job, submit_jobs
from jobsvc.errors import JobNotFound, JobsvcError, QueueUnavailable
from jobsvc.extensions import db
from jobsvc.web.schemas import JobBatchCreateSchema, JobCreateSchema
from jobsvc.worker.recovery import ENQUEUE_GRACE_SECONDS, reconcile

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class _JobsGroup(AppGroup):
    """The CLI edge of the error tree: a JobsvcError becomes its message and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RedisError as exc:
            error: JobsvcError = QueueUnavailable(exc)
        except JobsvcError as exc:
            error = exc
        click.echo(f"Error: {error}", err=True)
        ctx.exit(error.exit_code)


jobs_cli = _JobsGroup("jobs", help="Submit, inspect, cancel, retry, reconcile and purge jobs.")


def _load(event_id: str) -> Job:
    job = store.get_job(event_id.strip().lower())
    if job is None:
        raise JobNotFound(f"No job has event id {event_id}.")
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
@click.option(
    "--file",
    "paths",
    multiple=True,
    type=click.File("r", encoding="utf-8"),
    help="Read the text from a file; several --file options submit one job per file, as one batch.",
)
@click.option(
    "--jsonl",
    type=click.File("r", encoding="utf-8"),
    help='Submit one job per line, each {"input_text": ..., "callback_url": ...}, as one batch.',
)
@click.option(
    "--client",
    default=None,
    help="With API_KEYS set: the name of the key the jobs belong to (only that key sees them).",
)
@click.option("--wait", is_flag=True, help="Wait for the job, then print its summary and checklist.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --wait waits at most.")
def submit_command(
    text: str | None,
    paths: tuple[click.utils.LazyFile, ...],
    jsonl: click.utils.LazyFile | None,
    client: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Submit TEXT (or --file PATH, or several, or --jsonl PATH) and print the event ids, one per line.

    Several documents go in as one batch: all are accepted, or none.
    """
    if sum((text is not None, bool(paths), jsonl is not None)) != 1:
        raise click.UsageError("Give the text as an argument, with --file, or with --jsonl: one of them.")
    owner = _owner(client)
    if jsonl is not None or len(paths) > 1:
        if wait:
            raise click.UsageError("--wait waits for one job; submit a batch without it.")
        items = _jsonl_items(jsonl) if jsonl is not None else [{"input_text": p.read()} for p in paths]
        _submit_batch(items, owner)
        return
    text = paths[0].read() if paths else text
    try:
        body = JobCreateSchema().load({"input_text": text})
    except ValidationError as exc:
        raise click.UsageError(f"Nothing submitted: {exc.messages['input_text'][0]}") from None
    job, _ = submit_job(body["input_text"], owner=owner)
    click.echo(job.id)
    if not wait:
        return
    job = _wait(job.id, timeout)
    if job.status is not JobStatus.SUCCEEDED:
        raise click.ClickException(f"Job {job.status.value}: {job.error}")
    click.echo(f"\nSummary ({job.provider}, {job.model}):\n{job.summary}\n\nChecklist:\n{job.checklist}")


def _jsonl_items(lines: Any) -> list[Any]:
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise click.UsageError(f"Line {number} of --jsonl is not JSON: {exc.msg}.") from None
    return items


def _owner(client: str | None) -> str:
    """The owner of jobs the CLI submits: with API_KEYS, a key's name (so that key sees them)."""
    names = [key.name for key in current_app.config["API_KEYS"] or ()]
    if not names:
        if client is not None:
            raise click.UsageError("--client names an API key, and API_KEYS is not set.")
        return ""
    if client not in names:
        raise click.UsageError(
            f"With API_KEYS set, say which key the jobs belong to: --client {' | '.join(names)}."
        )
    return client


def _submit_batch(items: list[Any], owner: str) -> None:
    """Validate every item as the API does, then submit them all in one transaction."""
    try:
        body = JobBatchCreateSchema().load({"items": items})
    except ValidationError as exc:
        raise click.UsageError(
            f"Nothing submitted; the documents are invalid (by index from 0): {exc.messages}"
        ) from None
    ids, _ = submit_jobs(
        [(item["input_text"], item.get("callback_url")) for item in body["items"]], owner=owner
    )
    click.echo("\n".join(ids))


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
    _echo_job(cancel_job(_load(event_id)))


@jobs_cli.command("retry")
@click.argument("event_id")
def retry_command(event_id: str) -> None:
    """Run a failed or canceled job again under the same id."""
    _echo_job(retry_job(_load(event_id)))


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
    if dry_run:
        count = store.count_finished_before(cutoff)
        click.echo(f"{count} finished jobs are older than {age}; nothing deleted.")
        return
    count = store.purge_finished_before(cutoff)
    click.echo(f"Deleted {count} finished jobs older than {age}.")


@jobs_cli.command("reconcile")
@click.option(
    "--min-age",
    type=float,
    default=ENQUEUE_GRACE_SECONDS,
    show_default=True,
    help="Leave pending jobs younger than this many seconds alone (they may be enqueued right now).",
)
def reconcile_command(min_age: float) -> None:
    """Re-enqueue jobs whose worker died or whose queue entry was lost, and owed webhooks."""
    report = reconcile(current_app.config["LEASE_SECONDS"], min_age)
    click.echo(
        f"Released {len(report.expired)} expired leases; re-enqueued {len(report.requeued)} jobs; "
        f"queued {len(report.webhooks)} owed webhooks."
    )


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Apply the migrations (the same as `flask db upgrade`)."""
    create_schema()
    click.echo("Schema is ready.")


def init_app(app: Flask) -> None:
    """Register the commands on the app."""
    app.cli.add_command(jobs_cli)
    app.cli.add_command(init_db_command)
