"""Request and response schemas: the API contract, as marshmallow sees it."""

from __future__ import annotations

from datetime import UTC
from typing import Any, ClassVar

from flask import current_app
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from .models import JobStatus

EXAMPLE_ID = "3f1c2b9e-8a4d-4c6b-9e2f-7d5a1b0c4e8f"
EXAMPLE_TEXT = (
    "All staff must wash their hands before handling food. Raw meat is stored on the "
    "lowest shelf. Label every container with the date it was opened."
)


class JobCreateSchema(Schema):
    """The body of `POST /jobs/`."""

    class Meta:
        unknown = RAISE

    error_messages: ClassVar[dict[str, str]] = {
        "type": 'The request body must be a JSON object such as {"input_text": "..."}.',
        "unknown": "Unknown field: the server sets this field itself; send input_text only.",
    }

    input_text = fields.String(
        required=True,
        # Documented as a pattern too, so that clients (and fuzzers) know blank text is refused.
        validate=validate.Regexp(r"[\s\S]*\S", error="input_text must not be blank."),
        metadata={
            "description": "The guideline text to summarize; not blank, at most MAX_INPUT_CHARS "
            "characters (default 100,000).",
            "example": EXAMPLE_TEXT,
        },
    )

    callback_url = fields.URL(
        schemes={"http", "https"},
        require_tld=False,
        metadata={
            "description": "Optional. When the job ends, its JSON is POSTed here, signed "
            "(X-Jobsvc-Signature: sha256=HMAC-SHA256(body, WEBHOOK_SECRET)). Public http(s) addresses only.",
            "example": "https://example.com/hooks/jobsvc",
            "pattern": "^https?://",
        },
    )

    @validates("callback_url")
    def _check_callback_url(self, value: str, **_: Any) -> None:
        from .webhooks import UnsafeDestination, check_destination

        if not current_app.config["WEBHOOK_SECRET"]:
            raise ValidationError("This server has no WEBHOOK_SECRET, so it cannot sign callbacks.")
        try:
            check_destination(value, current_app.config["WEBHOOK_ALLOW_PRIVATE"])
        except UnsafeDestination as exc:
            raise ValidationError(str(exc)) from None

    @validates("input_text")
    def _check_input_text(self, value: str, **_: Any) -> None:
        limit = current_app.config["MAX_INPUT_CHARS"]
        if len(value) > limit:
            raise ValidationError(f"input_text has {len(value)} characters; the limit is {limit}.")


class JobCreatedSchema(Schema):
    """The answer to `POST /jobs/`."""

    event_id = fields.String(
        required=True, metadata={"description": "The job's id (a UUID).", "example": EXAMPLE_ID}
    )


class WebhookSchema(Schema):
    """Where the job's callback goes, and how its delivery went."""

    url = fields.String(required=True)
    state = fields.String(required=True, metadata={"description": "pending, delivered or failed."})
    attempts = fields.Integer(required=True)
    delivered_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)


class UsageSchema(Schema):
    """Token counts, as the provider reported them (the offline provider counts words)."""

    prompt_tokens = fields.Integer(required=True)
    completion_tokens = fields.Integer(required=True)
    total_tokens = fields.Integer(required=True)


class JobSchema(Schema):
    """A job and what the pipeline made of it."""

    id = fields.String(required=True, metadata={"example": EXAMPLE_ID})
    input_text = fields.String(required=True, metadata={"example": EXAMPLE_TEXT})
    status = fields.Enum(
        JobStatus,
        by_value=True,
        required=True,
        metadata={"description": "pending → running → succeeded | failed; canceled on request."},
    )
    summary = fields.String(allow_none=True, metadata={"description": "Step 1's output."})
    checklist = fields.String(
        allow_none=True,
        metadata={
            "description": "Step 2's output: a markdown bullet list, one `- item` per line.",
            "example": "- Wash hands before handling food\n- Label containers with the opening date",
        },
    )
    error = fields.String(
        allow_none=True, metadata={"description": "Why the job failed, and what to change."}
    )
    provider = fields.String(
        allow_none=True, metadata={"description": "`openai` or `offline`.", "example": "offline"}
    )
    model = fields.String(allow_none=True, metadata={"example": "extractive-v1"})
    attempts = fields.Integer(metadata={"description": "How many times a worker started the job."})
    retries = fields.Integer(metadata={"description": "How many times a client asked for a retry."})
    webhook = fields.Nested(
        WebhookSchema,
        allow_none=True,
        metadata={"description": "The callback's delivery state; null without callback_url."},
    )
    usage = fields.Nested(
        UsageSchema,
        allow_none=True,
        metadata={"description": "Tokens the provider reported for the steps kept; null before any."},
    )
    created_at = fields.DateTime(required=True, metadata={"description": "ISO 8601, UTC."})
    updated_at = fields.DateTime(required=True, metadata={"description": "Moves on every change."})
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


EXCERPT_CHARS = 200


class JobListItemSchema(JobSchema):
    """A job in a list: an excerpt of its input always, the whole input when asked for."""

    input_text = fields.String(
        allow_none=True, metadata={"description": "The whole input, with include_input=true; else null."}
    )
    input_excerpt = fields.Method(
        "_excerpt", metadata={"description": f"The first {EXCERPT_CHARS} characters of input_text."}
    )

    def _excerpt(self, item: Any) -> str:
        text = item.job.input_text
        return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


MAX_WAIT_SECONDS = 60


class JobWaitQuerySchema(Schema):
    """Options for `GET /jobs/<event_id>/`."""

    class Meta:
        unknown = RAISE

    wait = fields.Float(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_WAIT_SECONDS),
        metadata={
            "description": f"Seconds (at most {MAX_WAIT_SECONDS}) to wait for the job to finish before "
            "answering; the answer comes as soon as it does."
        },
    )


class JobListQuerySchema(Schema):
    """Filters for `GET /jobs/`."""

    class Meta:
        unknown = RAISE

    status = fields.Enum(JobStatus, by_value=True, metadata={"description": "Only jobs in this status."})
    created_after = fields.AwareDateTime(
        default_timezone=UTC, metadata={"description": "ISO 8601; jobs created at or after this instant."}
    )
    created_before = fields.AwareDateTime(
        default_timezone=UTC, metadata={"description": "ISO 8601; jobs created before this instant."}
    )
    include_input = fields.Boolean(
        load_default=False, metadata={"description": "Return each job's whole input_text too."}
    )
