"""HTTP resources for jobs: submit one, read one."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from . import store
from .models import Job
from .schemas import JobCreatedSchema, JobCreateSchema, JobSchema
from .service import Overloaded, submit_job

IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Any string of 1 to 255 printable ASCII characters. A retried POST with the same key and "
    "body returns the first request's event_id instead of creating a second job.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}
# Retry-After for a full queue: long enough for workers to make progress.
OVERLOADED_RETRY_AFTER = 10

blp = Blueprint("jobs", __name__, url_prefix="/jobs", description="Submit documents and poll their jobs.")


@blp.before_request
def _require_json_body() -> None:
    if request.method == "POST" and not request.is_json:
        abort(415, message="Send the body as JSON with the header Content-Type: application/json.")


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
        abort(404, message=f"{event_id[:64]!r} is not an event id: ids are UUIDs such as {uuid.UUID(int=0)}.")
    job = store.get_job(job_id)
    if job is None:
        abort(404, message=f"No job has event id {job_id}.")
    return job


@blp.route("/", strict_slashes=False)
class Jobs(MethodView):
    """The collection of jobs."""

    @blp.doc(parameters=[IDEMPOTENCY_HEADER])
    @blp.arguments(JobCreateSchema)
    @blp.response(
        201,
        JobCreatedSchema,
        headers={"Location": {"description": "URL of the new job.", "schema": {"type": "string"}}},
    )
    @blp.alt_response(400, response="DEFAULT_ERROR", description="The body is not valid JSON.")
    @blp.alt_response(413, response="DEFAULT_ERROR", description="The body is larger than the limit.")
    @blp.alt_response(415, response="DEFAULT_ERROR", description="The body is not JSON.")
    @blp.alt_response(
        409, response="DEFAULT_ERROR", description="The Idempotency-Key was used with a different body."
    )
    @blp.alt_response(
        429,
        response="DEFAULT_ERROR",
        description="Too many jobs wait (MAX_PENDING_JOBS); try again after Retry-After seconds.",
    )
    def post(self, body: dict[str, Any]) -> tuple[dict[str, str], int, dict[str, str]]:
        """Submit a document; answers with the id to poll."""
        try:
            job, created = submit_job(body["input_text"], _idempotency_key())
        except store.IdempotencyConflict as conflict:
            abort(
                409,
                message=f"Idempotency-Key {conflict.key!r} was first used with a different input_text "
                f"(job {conflict.job_id}); use a new key for a new document.",
            )
        except Overloaded as overloaded:
            abort(
                429,
                message=f"{overloaded.pending} jobs are waiting, the most this service queues; "
                f"try again in {OVERLOADED_RETRY_AFTER} seconds.",
                headers={"Retry-After": str(OVERLOADED_RETRY_AFTER)},
            )
        headers = {"Location": url_for("jobs.JobItem", event_id=job.id)}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return {"event_id": job.id}, 201, headers


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

    @blp.response(200, JobSchema)
    @blp.alt_response(404, response="DEFAULT_ERROR", description="No job has this id.")
    def get(self, event_id: str) -> Job:
        """Read a job: its status and, once it succeeded, its summary and checklist."""
        return _find_job(event_id)
