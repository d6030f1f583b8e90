"""The Job model: one row per submitted document, the source of truth for its state."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Index, String, Text, TypeDecorator
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db


class JobStatus(enum.StrEnum):
    """Where a job is in its life: pending → running → succeeded | failed, or canceled."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        """True once the job has ended and will not change again by itself."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def new_job_id() -> str:
    """A fresh job id: a UUID4 in canonical lowercase form."""
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back timezone-aware datetimes (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; use jobsvc.models.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Job(db.Model):  # type: ignore[name-defined]
    """A submitted document and what the pipeline made of it."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created_at", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_job_id)
    input_text: Mapped[str] = mapped_column(Text)
    status: Mapped[JobStatus] = mapped_column(
        SAEnum(
            JobStatus,
            native_enum=False,
            length=16,
            values_callable=lambda statuses: [s.value for s in statuses],
            validate_strings=True,
        ),
        default=JobStatus.PENDING,
    )
    summary: Mapped[str | None] = mapped_column(Text)
    checklist: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(default=0)
    # Starts since the last client retry: what MAX_ATTEMPTS bounds.
    run_attempts: Mapped[int] = mapped_column(default=0)
    retries: Mapped[int] = mapped_column(default=0)
    # Tokens the provider reported for the steps whose output was kept.
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    total_tokens: Mapped[int] = mapped_column(default=0)
    # Who runs the job, and until when, unless renewed: no two workers run it at once.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A client's Idempotency-Key, and a hash of the body it first came with.
    # Where to POST the job when it ends, and how that went.
    callback_url: Mapped[str | None] = mapped_column(Text)
    webhook_attempts: Mapped[int] = mapped_column(default=0)
    webhook_delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    webhook_error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def usage(self) -> dict[str, int] | None:
        """Token usage so far, or None before any step finished."""
        if not self.total_tokens:
            return None
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }

    @property
    def webhook(self) -> dict[str, object] | None:
        """Delivery state of the callback, or None without a callback_url."""
        if not self.callback_url:
            return None
        if self.webhook_delivered_at is not None:
            state = "delivered"
        elif self.webhook_error and self.webhook_error.startswith("gave up: "):
            state = "failed"
        else:
            state = "pending"
        return {
            "url": self.callback_url,
            "state": state,
            "attempts": self.webhook_attempts,
            "delivered_at": self.webhook_delivered_at,
            "last_error": self.webhook_error,
        }

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.status.value}>"
