"""Request and response schemas: the API contract, as marshmallow sees it."""

from __future__ import annotations

from datetime import UTC
from typing import Any, ClassVar

from flask import current_app
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates

from jobsvc.core.destinations import check_destination, check_destinations, check_form
from jobsvc.core.models import JobStatus
from jobsvc.core.representation import EXAMPLE_ID, EXAMPLE_TEXT, JobSchema
from jobsvc.errors import UnsafeDestination


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
            "description": "Optional. When the job ends, its JSON is POSTed here, signed per "
            "Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 "
            "HMAC-SHA256 of id.timestamp.body>); once per outcome, retried with the same webhook-id. "
            "Public http(s) addresses on ports 80 and 443 only, without user name or password.",
            "example": "https://example.com/hooks/jobsvc",
            "pattern": "^https?://",
        },
    )

    def __init__(self, *args: Any, vet_addresses: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: False for a batch's items: the batch vets every item's callback host at once.
        self.vet_addresses = vet_addresses

    @validates("callback_url")
    def _check_callback_url(self, value: str, **_: Any) -> None:
        if not current_app.config["WEBHOOK_SECRET"]:
            raise ValidationError("This server has no WEBHOOK_SECRET, so it cannot sign callbacks.")
        allow_private = current_app.config["WEBHOOK_ALLOW_PRIVATE"]
        try:
            if self.vet_addresses:
                check_destination(value, allow_private)
            else:
                check_form(value, allow_private)
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


class JobBatchCreateSchema(Schema):
    """The body of `POST /jobs/batch`."""

    class Meta:
        unknown = RAISE

    items = fields.List(
        fields.Nested(JobCreateSchema(vet_addresses=False)),
        required=True,
        # Documented as minItems, so clients (and fuzzers) know an empty batch is refused.
        validate=validate.Length(min=1, error="items is empty; send 1 to MAX_BATCH_ITEMS jobs."),
        metadata={
            "description": "The jobs to submit, each as the body of POST /jobs/; 1 to MAX_BATCH_ITEMS "
            "(default 1,000). One invalid item refuses the whole batch; `errors` names its index."
        },
    )

    @validates("items")
    def _check_items(self, value: list[Any], **_: Any) -> None:
        limit = current_app.config["MAX_BATCH_ITEMS"]
        if len(value) > limit:
            raise ValidationError(f"items has {len(value)} jobs; send 1 to {limit} (MAX_BATCH_ITEMS).")
        # Every item's callback host together: each distinct host looked up once, under one deadline.
        urls = [item.get("callback_url") for item in value]
        try:
            vetted = check_destinations(filter(None, urls), current_app.config["WEBHOOK_ALLOW_PRIVATE"])
        except UnsafeDestination as exc:
            raise ValidationError(str(exc)) from None
        refused = {
            index: {"callback_url": [str(vetted[url])]}
            for index, url in enumerate(urls)
            if url and isinstance(vetted[url], UnsafeDestination)
        }
        if refused:
            raise ValidationError(refused)  # type: ignore[arg-type]


class JobBatchCreatedSchema(Schema):
    """The answer to `POST /jobs/batch`."""

    event_ids = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "The jobs' ids, in the order of the items.", "example": [EXAMPLE_ID]},
    )


EXCERPT_CHARS = 200


def excerpt(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class JobListItemSchema(JobSchema):
    """A job in a list: an excerpt of its input always, the whole input when asked for."""

    input_text = fields.String(
        allow_none=True, metadata={"description": "The whole input, with include_input=true; else null."}
    )
    input_excerpt = fields.Method(
        "_excerpt", metadata={"description": f"The first {EXCERPT_CHARS} characters of input_text."}
    )

    def _excerpt(self, item: Any) -> str:
        return excerpt(item.job.input_text, EXCERPT_CHARS)


class JobWaitQuerySchema(Schema):
    """Options for `GET /jobs/<event_id>/`."""

    class Meta:
        unknown = RAISE

    wait = fields.Float(
        load_default=0,
        validate=validate.Range(min=0),
        metadata={
            "description": "Seconds to wait for the job to finish before answering; the answer comes as "
            "soon as it does. Longer waits are cut to WAIT_MAX_SECONDS (default 25, under the 30 s "
            "a router such as Heroku's allows): the answer is then the unfinished job, with Retry-After."
        },
    )

    @post_load
    def _cap_wait(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        # Asking for more than a router lets a request live is not the client's error: cap it.
        data["wait"] = min(data["wait"], current_app.config["WAIT_MAX_SECONDS"])
        return data


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
