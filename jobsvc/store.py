"""Job persistence: every state change is one guarded UPDATE in a write-locked transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from .database import write_transaction
from .extensions import db
from .models import Job, JobStatus, new_job_id, utcnow

_UNFINISHED = (JobStatus.PENDING, JobStatus.RUNNING)


def create_job(input_text: str) -> Job:
    """Insert a pending job and commit it."""
    now = utcnow()
    job = Job(
        id=new_job_id(),
        input_text=input_text,
        status=JobStatus.PENDING,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    with write_transaction() as session:
        session.add(job)
    return job


def get_job(job_id: str) -> Job | None:
    """The job with this canonical id, read fresh from the database, or None."""
    return db.session.get(Job, job_id, populate_existing=True)


def _update(job_id: str, allowed: tuple[JobStatus, ...], **values: Any) -> bool:
    """Apply `values` if the job is in one of the `allowed` statuses; True if it was."""
    statement = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_(allowed))
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    with write_transaction() as session:
        result = session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_job(job_id: str) -> Job | None:
    """Mark an unfinished job running and count the attempt; None if it has already ended."""
    now = utcnow()
    statement = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_(_UNFINISHED))
        .values(status=JobStatus.RUNNING, attempts=Job.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    with write_transaction() as session:
        claimed = session.execute(statement).rowcount  # type: ignore[attr-defined]
        if claimed:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.started_at.is_(None))
                .values(started_at=now)
                .execution_options(synchronize_session=False)
            )
    return get_job(job_id) if claimed else None


def save_summary(job_id: str, summary: str, provider: str, model: str) -> bool:
    """Checkpoint step 1 so a re-run resumes at step 2."""
    return _update(job_id, (JobStatus.RUNNING,), summary=summary, provider=provider, model=model)


def complete_job(job_id: str, checklist: str) -> bool:
    """Store the checklist and mark the job succeeded."""
    return _update(
        job_id,
        (JobStatus.RUNNING,),
        checklist=checklist,
        status=JobStatus.SUCCEEDED,
        error=None,
        finished_at=utcnow(),
    )


def fail_job(job_id: str, error: str) -> bool:
    """Mark an unfinished job failed with a message a person can act on."""
    return _update(job_id, _UNFINISHED, status=JobStatus.FAILED, error=error, finished_at=utcnow())
