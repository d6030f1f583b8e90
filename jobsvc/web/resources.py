"""HTTP resources for jobs: submit one, read one."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from jobsvc.core import store
from jobsvc.core.models import Job
from jobsvc.core.representation import EXAMPLE_ID, EXAMPLE_JOB, EXAMPLE_TEXT
from jobsvc.core.service import cancel_job, retry_job, submit_job, submit_jobs, wait_for_job
from jobsvc.errors import JobNotFound, Unauthorized
from jobsvc.web import limits
from jobsvc.web.auth import api_client, new_job_owner, owner_filter
from jobsvc.web.bodies import JsonParser
from jobsvc.web.schemas import (
    JobBatchCreatedSchema,
    JobBatchCreateSchema,
    JobCreatedSchema,
    JobCreateSchema,
    JobListItemSchema,
    JobListQuerySchema,
    JobSchema,
    JobWaitQuerySchema,
)

IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Any string of 1 to 255 printable ASCII characters. A retried POST with the same key and "
    "body returns the first request's event_id instead of creating a second job.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}
ERRORS = {
    400: "The body is not valid JSON, or the Idempotency-Key is unusable.",
    401: "API_KEYS is set and the request has no valid Authorization: Bearer key.",
    404: "No job has this id (or it belongs to another API key).",
    409: "The job's status does not allow this (see the message).",
    413: "The body is larger than the limit.",
    415: "The body is not JSON.",
    429: "Too many requests (RATE_LIMIT), failed authentications (AUTH_FAILURE_LIMIT) or waiting jobs "
    "(MAX_PENDING_JOBS); see Retry-After.",
}
EXAMPLE_CALLBACK = "https://example.com/hooks/jobsvc"
# Examples for the API docs (Swagger UI's "Try it out" starts from them).
EXAMPLE_LISTED_JOB = {**EXAMPLE_JOB, "input_text": None, "input_excerpt": EXAMPLE_TEXT}
EXAMPLE_CANCELED_JOB = {
    **EXAMPLE_JOB,
    "status": "canceled",
    "summary": None,
    "checklist": None,
    "provider": None,
    "model": None,
    "attempts": 0,
    "usage": None,
    "started_at": None,
}
EXAMPLE_RETRIED_JOB = {**EXAMPLE_CANCELED_JOB, "status": "pending", "retries": 1, "finished_at": None}
MAX_OFFSET = 2**53
#: A page with include_input=true holds at most this many characters of input (page size
#: times MAX_INPUT_CHARS), so its answer stays within a few MB.
INPUT_CHARS_PER_PAGE = 1_000_000
# What an unfinished job's answer suggests as the next poll, in seconds.
POLL_AGAIN_SECONDS = 2

blp = Blueprint("jobs", __name__, url_prefix="/jobs", description="Submit documents and poll their jobs.")
# Before any @blp.arguments below: each binds the parser when it decorates.
blp.ARGUMENTS_PARSER = JsonParser()


@blp.before_request
def _require_api_key() -> None:
    if not current_app.config["API_KEYS"]:
        return
    # An address that keeps failing is refused before its next guess is even compared.
    limits.refuse_if_guessing()
    if api_client() is None:
        limits.count_failed_authentication()
        raise Unauthorized()


@blp.before_request
def _require_json_body() -> None:
    if request.method == "POST" and request.content_length and not request.is_json:
        abort(415, message="Send the body as JSON with the header Content-Type: application/json.")


class ListedJob:
    """A job as a list shows it: `input_text` only when the client asked for it."""

    def __init__(self, job: Job, include_input: bool) -> None:
        self.job = job
        self.input_text = job.input_text if include_input else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.job, name)


def errors(*codes: int) -> Any:
    """Document these error answers (and 401 and 429, which every operation can give)."""

    def decorate(view: Any) -> Any:
        for code in sorted({*codes, 401, 429}):
            view = blp.alt_response(code, response="DEFAULT_ERROR", description=ERRORS[code])(view)
        return view

    return decorate


def _input_page_size() -> int:
    """The most jobs a page with whole inputs may hold."""
    return max(1, INPUT_CHARS_PER_PAGE // current_app.config["MAX_INPUT_CHARS"])


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        abort(400, message="Idempotency-Key must be 1 to 255 printable ASCII characters.")
    return key


def _find_job(event_id: str) -> Job:
    try:
        job_id = str(uuid.UUID(event_id))
    except ValueError:
        raise JobNotFound(
            f"{event_id[:64]!r} is not an event id: ids are UUIDs such as {uuid.UUID(int=0)}."
        ) from None
    # Another key's job is as unknown as a job that never existed.
    job = store.get_job(job_id, owner=owner_filter())
    if job is None:
        raise JobNotFound(f"No job has event id {job_id}.")
    return job


@blp.route("/", strict_slashes=False)
class Jobs(MethodView):
    """The collection of jobs."""

    @blp.doc(operationId="listJobs")
    @blp.arguments(JobListQuerySchema, location="query")
    @blp.response(200, JobListItemSchema(many=True), example=[EXAMPLE_LISTED_JOB])
    @errors()
    @blp.paginate()
    def get(self, filters: dict[str, Any], pagination_parameters: Any) -> list[ListedJob]:
        """List jobs, newest first; filter by status and creation time.

        With `include_input=true` a page holds at most 1,000,000 / MAX_INPUT_CHARS jobs (at least
        one); a larger `page_size` is lowered to that, and X-Pagination counts pages of that size.
        """
        if filters["include_input"]:
            pagination_parameters.page_size = min(pagination_parameters.page_size, _input_page_size())
        page = pagination_parameters.page
        size = pagination_parameters.page_size
        jobs, total = store.list_jobs(
            status=filters.get("status"),
            created_after=filters.get("created_after"),
            created_before=filters.get("created_before"),
            # Pages past the end are empty; past this, databases overflow their integers.
            offset=min((page - 1) * size, MAX_OFFSET),
            limit=size,
            owner=owner_filter(),
        )
        pagination_parameters.item_count = total
        return [ListedJob(job, filters["include_input"]) for job in jobs]

    @blp.doc(operationId="submitJob", parameters=[IDEMPOTENCY_HEADER])
    @blp.arguments(JobCreateSchema, example={"input_text": EXAMPLE_TEXT})
    @blp.response(
        201,
        JobCreatedSchema,
        example={"event_id": EXAMPLE_ID},
        headers={
            "Location": {"description": "URL of the new job.", "schema": {"type": "string"}},
            "Idempotent-Replayed": {
                "description": "`true` when an Idempotency-Key replayed an earlier request's job.",
                "schema": {"type": "string"},
            },
        },
    )
    @errors(400, 413, 415, 409, 429)
    def post(self, body: dict[str, Any]) -> tuple[dict[str, str], int, dict[str, str]]:
        """Submit a document; answers with the id to poll."""
        job, created = submit_job(
            body["input_text"], _idempotency_key(), body.get("callback_url"), owner=new_job_owner()
        )
        headers = {"Location": url_for("jobs.JobItem", event_id=job.id)}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return {"event_id": job.id}, 201, headers


@blp.route("/batch", strict_slashes=False)
class JobBatch(MethodView):
    """Many jobs in one request."""

    @blp.doc(parameters=[IDEMPOTENCY_HEADER], operationId="submitJobs")
    @blp.arguments(
        JobBatchCreateSchema,
        example={
            "items": [
                {"input_text": EXAMPLE_TEXT},
                {"input_text": "Lock the server room. Log every visitor.", "callback_url": EXAMPLE_CALLBACK},
            ]
        },
    )
    @blp.response(
        201,
        JobBatchCreatedSchema,
        example={"event_ids": [EXAMPLE_ID, "9b2d4c1a-0f3e-4d5b-8a6c-2e1f0b9d7c35"]},
        headers={
            "Idempotent-Replayed": {
                "description": "`true` when an Idempotency-Key replayed an earlier batch's jobs.",
                "schema": {"type": "string"},
            },
        },
    )
    @errors(400, 413, 415, 409, 429)
    def post(self, body: dict[str, Any]) -> tuple[dict[str, list[str]], int, dict[str, str]]:
        """Submit up to MAX_BATCH_ITEMS documents at once: all are accepted, or none."""
        items = [(item["input_text"], item.get("callback_url")) for item in body["items"]]
        ids, created = submit_jobs(items, _idempotency_key(), owner=new_job_owner())
        return {"event_ids": ids}, 201, {} if created else {"Idempotent-Replayed": "true"}


@blp.before_request
def _batch_body_limit() -> None:
    # A batch carries many documents: its own size limit instead of one document's.
    if request.endpoint == "jobs.JobBatch":
        request.max_content_length = current_app.config["MAX_BATCH_BYTES"]


EVENT_ID_PARAMETER = {
    "in": "path",
    "name": "event_id",
    "required": True,
    "description": "The id POST /jobs/ returned; any letter case. Anything else is a 404 that says so.",
    "schema": {"type": "string", "format": "uuid"},
}


@blp.route("/<event_id>/", strict_slashes=False, parameters=[EVENT_ID_PARAMETER])
class JobItem(MethodView):
    """One job."""

    @blp.etag
    @blp.doc(operationId="getJob")
    @blp.arguments(JobWaitQuerySchema, location="query")
    @blp.response(
        200,
        JobSchema,
        example=EXAMPLE_JOB,
        headers={
            "Retry-After": {
                "description": "On unfinished jobs: seconds until a poll is worth it.",
                "schema": {"type": "integer"},
            }
        },
    )
    @errors(404)
    def get(self, args: dict[str, Any], event_id: str) -> tuple[Job, int, dict[str, str]]:
        """Read a job; with `wait`, answer as soon as it finishes (long polling)."""
        job = _find_job(event_id)
        if args["wait"] and not job.status.is_terminal:
            job = wait_for_job(job, args["wait"])
        headers = {} if job.status.is_terminal else {"Retry-After": str(POLL_AGAIN_SECONDS)}
        return job, 200, headers


@blp.route("/<event_id>/cancel", strict_slashes=False, parameters=[EVENT_ID_PARAMETER])
class JobCancel(MethodView):
    """Canceling a job."""

    @blp.doc(operationId="cancelJob")
    @blp.response(200, JobSchema, example=EXAMPLE_CANCELED_JOB)
    @errors(404, 409)
    def post(self, event_id: str) -> Job:
        """Cancel a pending job or stop a running one; its status becomes `canceled`."""
        return cancel_job(_find_job(event_id))


@blp.route("/<event_id>/retry", strict_slashes=False, parameters=[EVENT_ID_PARAMETER])
class JobRetry(MethodView):
    """Retrying a job."""

    @blp.doc(operationId="retryJob")
    @blp.response(200, JobSchema, example=EXAMPLE_RETRIED_JOB)
    @errors(404, 409)
    def post(self, event_id: str) -> Job:
        """Run a failed or canceled job again, same id, resuming from its summary if it has one."""
        return retry_job(_find_job(event_id))
