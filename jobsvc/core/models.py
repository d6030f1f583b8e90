"""The Job model: one row per submitted document, the source of truth for its state."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Index, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column

from jobsvc.extensions import db


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
            raise ValueError("naive datetime; use jobsvc.core.models.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Job(db.Model):  # type: ignore[name-defined]
    """A submitted document and what the pipeline made of it."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_owner_created_at", "owner", "created_at"),
        Index("ix_jobs_webhook_due_at", "webhook_due_at"),
        # A client's key is its own: two API keys may use the same Idempotency-Key.
        UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency_key"),
    )

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
    # Where to POST the job when it ends, and how that went. A delivery is owed exactly
    # while webhook_due_at is set: from the moment the job ends until it is delivered or
    # given up. The row is the outbox; RQ only carries the attempts.
    callback_url: Mapped[str | None] = mapped_column(Text)
    webhook_attempts: Mapped[int] = mapped_column(default=0)
    webhook_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    webhook_delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    webhook_gave_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    webhook_error: Mapped[str | None] = mapped_column(Text)
    # Which API key (by its name) created the job: with API_KEYS set, only that key sees it.
    # "" when the server has no API keys.
    owner: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # A client's Idempotency-Key, and a hash of the body it first came with.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # What the output is made of: the checklist as a JSON list of items, how it was read
    # (structured, markdown or sentences), the prompts' version, how much of its content
    # the input supports (0..1), and notes a client can show.
    checklist_items: Mapped[list[str] | None] = mapped_column(JSON)
    checklist_source: Mapped[str | None] = mapped_column(String(16))
    prompt_version: Mapped[str | None] = mapped_column(String(32))
    grounding: Mapped[float | None] = mapped_column(Float)
    warnings: Mapped[list[str] | None] = mapped_column(JSON)
    # Checkpoint of a long document's chunk summaries, so a re-run pays for none twice.
    chunk_summaries: Mapped[list[str] | None] = mapped_column(JSON)
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
        elif self.webhook_gave_up_at is not None:
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
