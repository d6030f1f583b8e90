"""Job persistence: every state change is one guarded UPDATE in a write-locked transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from jobsvc.core.database import write_transaction
from jobsvc.core.models import TERMINAL_STATUSES, Job, JobStatus, new_job_id, utcnow
from jobsvc.errors import IdempotencyConflict
from jobsvc.extensions import db
from jobsvc.llm.base import Usage

_UNFINISHED = (JobStatus.PENDING, JobStatus.RUNNING)


def create_job(
    input_text: str,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    callback_url: str | None = None,
    *,
    owner: str = "",
) -> tuple[Job, bool]:
    """Insert a pending job for `owner` and commit it; with a key `owner` used before, return that job.

    Returns the job and whether it was created now. Two requests racing with one key get
    one job: the loser of the unique (owner, idempotency_key) constraint reads the winner's.
    """
    values = _row(new_job_id(), NewJob(input_text, callback_url, owner), utcnow())
    values.update(idempotency_key=idempotency_key, request_hash=request_hash)
    try:
        with write_transaction() as session:
            if idempotency_key is not None:
                existing = session.scalar(_keyed(owner, idempotency_key))
                if existing is not None:
                    return _replayed(existing, idempotency_key, request_hash)
            # A Core INSERT, not session.add(): no unit-of-work flush while the write lock is held.
            session.execute(insert(Job.__table__), values)
    except IntegrityError:
        # PostgreSQL takes no lock for the SELECT above: a concurrent request with the same
        # key committed first. Its job is this request's answer.
        if idempotency_key is None:
            raise
        existing = db.session.scalar(_keyed(owner, idempotency_key))
        if existing is None:
            raise
        return _replayed(existing, idempotency_key, request_hash)
    return Job(**values), True


def _keyed(owner: str, idempotency_key: str) -> Any:
    return select(Job).where(Job.owner == owner, Job.idempotency_key == idempotency_key)


@dataclass(frozen=True)
class NewJob:
    """A job to create: its input, where to report its end, and the API key name that sent it."""

    input_text: str
    callback_url: str | None = None
    owner: str = ""


# Ids of a keyed batch after its first job: uuid5(this namespace, "<first id>:<index>").
_BATCH_IDS = uuid.UUID("5b0f3b52-9c1e-4a57-8d0e-6a1f2f1b7c3d")


def batch_job_ids(first_id: str, count: int) -> list[str]:
    """The ids of a keyed batch of `count` jobs whose first job has `first_id`.

    Only the first job of a batch carries its Idempotency-Key (the key is unique per owner);
    the others' ids follow from the first one's, so a replay finds them all from the key.
    The first id is random, so nobody can predict the others before the batch exists.
    """
    return [first_id] + [str(uuid.uuid5(_BATCH_IDS, f"{first_id}:{index}")) for index in range(1, count)]


def _row(job_id: str, job: NewJob, now: datetime) -> dict[str, Any]:
    return {
        "id": job_id,
        "input_text": job.input_text,
        "status": JobStatus.PENDING,
        "attempts": 0,
        "run_attempts": 0,
        "retries": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "owner": job.owner,
        "idempotency_key": None,
        "request_hash": None,
        "callback_url": job.callback_url,
        "webhook_attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def create_jobs(
    jobs: Sequence[NewJob], idempotency_key: str | None = None, request_hash: str | None = None
) -> tuple[list[str], bool]:
    """Insert pending jobs in one INSERT and one transaction: all of them, or none.

    With a key (a batch's, owned by the first job's owner): the first job carries it, and a
    key seen before returns that batch's ids instead (IdempotencyConflict if its
    request_hash differs). Returns the ids, in order, and whether they were created now.
    """
    if not jobs:
        return [], True
    keyed = idempotency_key is not None
    ids = batch_job_ids(new_job_id(), len(jobs)) if keyed else [new_job_id() for _ in jobs]
    now = utcnow()
    rows = [_row(job_id, job, now) for job_id, job in zip(ids, jobs, strict=True)]
    rows[0].update(idempotency_key=idempotency_key, request_hash=request_hash)
    owner = jobs[0].owner
    try:
        with write_transaction() as session:
            if idempotency_key is not None:
                earlier = _batch_for_key(session, owner, idempotency_key, request_hash, len(jobs))
                if earlier is not None:
                    return earlier, False
            # A Core INSERT of every row at once: one statement, one commit, no unit of work.
            session.execute(insert(Job.__table__), rows)
    except IntegrityError:
        # Another process committed the same key between our check and our insert.
        if idempotency_key is None:
            raise
        earlier = _batch_for_key(db.session, owner, idempotency_key, request_hash, len(jobs))
        if earlier is None:
            raise
        return earlier, False
    return ids, True


def _batch_for_key(
    session: Any, owner: str, idempotency_key: str, request_hash: str | None, count: int
) -> list[str] | None:
    statement = select(Job.id, Job.request_hash).where(
        Job.owner == owner, Job.idempotency_key == idempotency_key
    )
    earlier = session.execute(statement).first()
    if earlier is None:
        return None
    if earlier.request_hash != request_hash:
        raise IdempotencyConflict(idempotency_key, earlier.id)
    # The same hash is the same body, so the same number of jobs.
    return batch_job_ids(earlier.id, count)


def _replayed(existing: Job, idempotency_key: str, request_hash: str | None) -> tuple[Job, bool]:
    if existing.request_hash != request_hash:
        raise IdempotencyConflict(idempotency_key, existing.id)
    return existing, False


def get_job(job_id: str, owner: str | None = None) -> Job | None:
    """The job with this canonical id, read fresh from the database, or None.

    With `owner`, only that owner's job: another owner's is None, as if it did not exist.
    """
    job = db.session.get(Job, job_id, populate_existing=True)
    if job is None or (owner is not None and job.owner != owner):
        return None
    return job


def job_id_for_key(idempotency_key: str, owner: str = "") -> str | None:
    """The id of the job `owner`'s Idempotency-Key created, if any (keys are per owner)."""
    return db.session.scalar(select(Job.id).where(Job.owner == owner, Job.idempotency_key == idempotency_key))


def list_jobs(
    *,
    status: JobStatus | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    offset: int = 0,
    limit: int = 20,
    owner: str | None = None,
) -> tuple[list[Job], int]:
    """One page of jobs, newest first, and how many match in all; only `owner`'s, unless None (all)."""
    conditions: list[ColumnElement[bool]] = []
    if owner is not None:
        conditions.append(Job.owner == owner)
    if status is not None:
        conditions.append(Job.status == status)
    if created_after is not None:
        conditions.append(Job.created_at >= created_after)
    if created_before is not None:
        conditions.append(Job.created_at < created_before)
    total = db.session.scalar(select(func.count()).select_from(Job).where(*conditions)) or 0
    page = db.session.scalars(
        select(Job).where(*conditions).order_by(Job.created_at.desc(), Job.id).offset(offset).limit(limit)
    )
    return list(page), total


def count_where(condition: ColumnElement[bool]) -> int:
    """How many jobs meet `condition`."""
    return db.session.scalar(select(func.count()).select_from(Job).where(condition)) or 0


def _update(job_id: str, *conditions: ColumnElement[bool], **values: Any) -> bool:
    """Apply `values` to the job if every condition holds; True if it did."""
    # A Core UPDATE of the table: the ORM's bulk-update path costs more and adds nothing here.
    statement = update(Job.__table__).where(Job.id == job_id, *conditions)
    statement = statement.values(updated_at=utcnow(), **values)
    with write_transaction() as session:
        result = session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _lease_is_free(now: datetime) -> ColumnElement[bool]:
    return or_(
        Job.status == JobStatus.PENDING,
        (Job.status == JobStatus.RUNNING) & (Job.lease_expires_at.is_(None) | (Job.lease_expires_at < now)),
    )


def claim_job(job_id: str, owner: str, lease_seconds: int) -> Job | None:
    """Take the job's lease, mark it running and count the attempt; None if it is not free."""
    now = utcnow()
    statement = (
        update(Job.__table__)
        .where(Job.id == job_id, _lease_is_free(now))
        .values(
            status=JobStatus.RUNNING,
            attempts=Job.attempts + 1,
            run_attempts=Job.run_attempts + 1,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            started_at=func.coalesce(Job.started_at, now),
            updated_at=now,
        )
        .returning(*Job.__table__.columns)
    )
    with write_transaction() as session:
        row = session.execute(statement).mappings().first()
    # A detached copy from UPDATE ... RETURNING: no second read, and no connection or
    # snapshot (which would keep SQLite's WAL from being checkpointed) held while the LLM works.
    return Job(**row) if row is not None else None


def renew_lease(job_id: str, owner: str, lease_seconds: int) -> bool:
    """Extend the lease `owner` holds; False if it has lost it."""
    return _update(
        job_id,
        Job.status == JobStatus.RUNNING,
        Job.lease_owner == owner,
        lease_expires_at=utcnow() + timedelta(seconds=lease_seconds),
    )


def release_lease(job_id: str, *, only_expired: bool = False) -> bool:
    """Put a running job back to pending, for another run (its checkpoints stay)."""
    conditions = [Job.status == JobStatus.RUNNING]
    if only_expired:
        conditions.append(Job.lease_expires_at < utcnow())
    return _update(job_id, *conditions, status=JobStatus.PENDING, lease_owner=None, lease_expires_at=None)


def hand_back_job(job_id: str, owner: str) -> bool:
    """Put the job `owner` runs back to pending at once (a stopping worker); its checkpoints stay.

    The run is not counted against MAX_ATTEMPTS: its worker left in good order, it did not die.
    """
    return _update(
        job_id,
        *_held_by(owner),
        status=JobStatus.PENDING,
        lease_owner=None,
        lease_expires_at=None,
        run_attempts=Job.run_attempts - 1,
    )


def _ended(now: datetime) -> dict[str, Any]:
    """Values every move to a terminal status sets: the job owes its webhook from now on."""
    return {
        "finished_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
        # The outbox: a job with a callback_url owes a delivery for this outcome.
        "webhook_due_at": case((Job.callback_url.is_not(None), now), else_=None),
    }


def _held_by(owner: str) -> list[ColumnElement[bool]]:
    return [Job.status == JobStatus.RUNNING, Job.lease_owner == owner]


def _add_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": Job.prompt_tokens + usage.prompt_tokens,
        "completion_tokens": Job.completion_tokens + usage.completion_tokens,
        "total_tokens": Job.total_tokens + usage.total_tokens,
    }


def save_chunk_summary(job_id: str, owner: str, key: str, summary: str, usage: Usage) -> bool:
    """Checkpoint one chunk summary of a long document (by its key) and count its tokens."""
    with write_transaction() as session:
        saved = session.execute(
            select(Job.chunk_summaries).where(Job.id == job_id, *_held_by(owner))
        ).one_or_none()
        if saved is None:
            return False
        entries = [entry for entry in saved[0] or [] if entry.get("key") != key]
        entries.append({"key": key, "summary": summary})
        statement = (
            update(Job.__table__)
            .where(Job.id == job_id, *_held_by(owner))
            .values(updated_at=utcnow(), chunk_summaries=entries, **_add_usage(usage))
        )
        return bool(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def chunk_summaries(job: Job) -> dict[str, str]:
    """The job's checkpointed chunk summaries, by key."""
    return {entry["key"]: entry["summary"] for entry in job.chunk_summaries or []}


def save_summary(
    job_id: str,
    owner: str,
    summary: str,
    provider: str,
    model: str,
    usage: Usage,
    warnings: Sequence[str] = (),
) -> bool:
    """Checkpoint step 1 so a re-run resumes at step 2; its warnings stay with the job."""
    return _update(
        job_id,
        *_held_by(owner),
        summary=summary,
        provider=provider,
        model=model,
        warnings=list(warnings),
        **_add_usage(usage),
    )


def complete_job(
    job_id: str,
    owner: str,
    checklist: str,
    usage: Usage,
    *,
    items: Sequence[str] | None = None,
    source: str | None = None,
    prompt_version: str | None = None,
    grounding: float | None = None,
    warnings: Sequence[str] = (),
) -> bool:
    """Store the checklist (markdown and items), what the output is worth, and mark the job succeeded.

    `warnings` are the job's, step 1's included: the run knows them, so no read is needed.
    """
    return _update(
        job_id,
        *_held_by(owner),
        **_add_usage(usage),
        checklist=checklist,
        checklist_items=list(items) if items is not None else None,
        checklist_source=source,
        prompt_version=prompt_version,
        grounding=grounding,
        warnings=list(warnings),
        status=JobStatus.SUCCEEDED,
        error=None,
        **_ended(utcnow()),
    )


def fail_job(job_id: str, error: str, owner: str | None = None) -> bool:
    """Mark an unfinished job failed with a message a person can act on."""
    conditions = _held_by(owner) if owner is not None else [Job.status.in_(_UNFINISHED)]
    return _update(
        job_id,
        *conditions,
        status=JobStatus.FAILED,
        error=error,
        **_ended(utcnow()),
    )


def cancel_job(job_id: str) -> bool:
    """Cancel a pending or running job; True if it was unfinished."""
    return _update(
        job_id,
        Job.status.in_(_UNFINISHED),
        status=JobStatus.CANCELED,
        error="Canceled on request.",
        **_ended(utcnow()),
    )


def reopen_job(job_id: str) -> bool:
    """Put a failed or canceled job back to pending for another run; its checkpoints stay."""
    return _update(
        job_id,
        Job.status.in_((JobStatus.FAILED, JobStatus.CANCELED)),
        status=JobStatus.PENDING,
        error=None,
        finished_at=None,
        run_attempts=0,
        retries=Job.retries + 1,
        # The next outcome is a new message: its own delivery series.
        webhook_attempts=0,
        webhook_due_at=None,
        webhook_delivered_at=None,
        webhook_gave_up_at=None,
        webhook_error=None,
    )


def owed_webhooks(now: datetime, limit: int = 500) -> list[str]:
    """Ended jobs whose webhook for their current outcome is due and not yet delivered or given up."""
    statement = select(Job.id).where(Job.webhook_due_at <= now).order_by(Job.webhook_due_at).limit(limit)
    return list(db.session.scalars(statement))


def claim_webhook(job_id: str, hold_seconds: float) -> Job | None:
    """Take the job's due delivery for `hold_seconds` (one sender at a time); None if none is due.

    A sender that dies holding it leaves the delivery due again when the hold ends.
    """
    now = utcnow()
    statement = (
        update(Job.__table__)
        .where(Job.id == job_id, Job.webhook_due_at <= now, Job.status.in_(TERMINAL_STATUSES))
        .values(webhook_due_at=now + timedelta(seconds=hold_seconds))
        .returning(*Job.__table__.columns)
    )
    with write_transaction() as session:
        row = session.execute(statement).mappings().first()
    return Job(**row) if row is not None else None


def record_webhook_attempt(
    job_id: str, retries: int, *, error: str | None, next_due: datetime | None
) -> bool:
    """Count a delivery attempt for the outcome numbered `retries`: delivered when `error` is None;
    else due again at `next_due`, or given up when that is None. False if the job moved on meanwhile."""
    now = utcnow()
    values: dict[str, Any] = {"webhook_attempts": Job.webhook_attempts + 1, "webhook_error": error}
    if error is None:
        values |= {"webhook_delivered_at": now, "webhook_due_at": None}
    elif next_due is None:
        values |= {"webhook_gave_up_at": now, "webhook_due_at": None}
    else:
        values["webhook_due_at"] = next_due
    statement = (
        update(Job.__table__)
        .where(Job.id == job_id, Job.retries == retries, Job.status.in_(TERMINAL_STATUSES))
        .values(**values)
    )
    with write_transaction() as session:
        result = session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def expired_leases(limit: int = 500) -> list[str]:
    """Running jobs whose worker stopped renewing their lease."""
    statement = (
        select(Job.id)
        .where(Job.status == JobStatus.RUNNING, Job.lease_expires_at < utcnow())
        .order_by(Job.lease_expires_at)
        .limit(limit)
    )
    return list(db.session.scalars(statement))


def pending_jobs(older_than: datetime, limit: int = 1000) -> list[tuple[str, datetime]]:
    """Ids and last changes of pending jobs, oldest first, last changed before `older_than`."""
    statement = (
        select(Job.id, Job.updated_at)
        .where(Job.status == JobStatus.PENDING, Job.updated_at < older_than)
        .order_by(Job.created_at)
        .limit(limit)
    )
    return [(row.id, row.updated_at) for row in db.session.execute(statement)]


def _finished_before(cutoff: datetime) -> ColumnElement[bool]:
    return Job.status.in_(TERMINAL_STATUSES) & (Job.finished_at < cutoff)


def count_finished_before(cutoff: datetime) -> int:
    """How many jobs ended before `cutoff`."""
    return count_where(_finished_before(cutoff))


def purge_finished_before(cutoff: datetime) -> int:
    """Delete the jobs that ended before `cutoff` and owe nothing; unfinished jobs are never touched."""
    # A job that still owes its webhook stays until the delivery is done or given up.
    statement = delete(Job).where(_finished_before(cutoff), Job.webhook_due_at.is_(None))
    with write_transaction() as session:
        return session.execute(statement).rowcount  # type: ignore[attr-defined]
