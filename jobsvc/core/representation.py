"""The job as JSON: what the API answers and what a webhook sends, from one schema."""

from __future__ import annotations

from marshmallow import Schema, fields

from jobsvc.core.models import JobStatus

EXAMPLE_ID = "3f1c2b9e-8a4d-4c6b-9e2f-7d5a1b0c4e8f"
EXAMPLE_TEXT = (
    "All staff must wash their hands before handling food. Raw meat is stored on the "
    "lowest shelf. Label every container with the date it was opened."
)
EXAMPLE_CHECKLIST = (
    "- Wash hands before handling food\n"
    "- Store raw meat on the lowest shelf\n"
    "- Label every container with the date it was opened"
)
# A finished job as GET /jobs/<event_id>/ answers it: the example in the API docs.
EXAMPLE_JOB = {
    "id": EXAMPLE_ID,
    "input_text": EXAMPLE_TEXT,
    "status": "succeeded",
    "summary": "Staff wash their hands before touching food, keep raw meat on the lowest shelf "
    "and date every opened container.",
    "checklist": EXAMPLE_CHECKLIST,
    "error": None,
    "provider": "openai",
    "model": "gpt-4o-mini",
    "attempts": 1,
    "retries": 0,
    "webhook": None,
    "usage": {"prompt_tokens": 182, "completion_tokens": 61, "total_tokens": 243},
    "created_at": "2026-11-30T09:15:02.418000+00:00",
    "updated_at": "2026-11-30T09:15:05.903000+00:00",
    "started_at": "2026-11-30T09:15:02.611000+00:00",
    "finished_at": "2026-11-30T09:15:05.903000+00:00",
}


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
            "example": EXAMPLE_CHECKLIST,
        },
    )
    checklist_items = fields.List(
        fields.String(),
        allow_none=True,
        metadata={
            "description": "Exactly the checklist's items, in order, as a JSON array: no markdown to parse.",
            "example": ["Wash hands before handling food", "Label containers with the opening date"],
        },
    )
    checklist_source = fields.String(
        allow_none=True,
        metadata={
            "description": "How the items were read: `structured` (JSON from structured outputs), "
            "`markdown` (a parsed list), or `sentences` (the model answered in paragraphs twice).",
            "example": "markdown",
        },
    )
    prompt_version = fields.String(
        allow_none=True,
        metadata={"description": "Version of the prompts that made the output (a hash of their texts)."},
    )
    grounding = fields.Float(
        allow_none=True,
        metadata={
            "description": "Share (0 to 1) of the summary's and checklist's content words that occur "
            "in the input; low values suggest invented content.",
            "example": 0.94,
        },
    )
    warnings = fields.List(
        fields.String(),
        allow_none=True,
        metadata={
            "description": "Notes on the output a client can show (low grounding, a list read "
            "from sentences); empty or null when there are none."
        },
    )
    error = fields.String(
        allow_none=True, metadata={"description": "Why the job failed, and what to change."}
    )
    provider = fields.String(
        allow_none=True, metadata={"description": "`openai` or `offline`.", "example": "offline"}
    )
    model = fields.String(allow_none=True, metadata={"example": "extractive-v2"})
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
