"""The web edge of the error tree: one JSON shape for every error the app returns."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES as HTTP_STATUS_NAMES

from jobsvc.errors import DatabaseUnavailable, JobsvcError, SchemaOutOfDate
from jobsvc.extensions import db

log = logging.getLogger(__name__)


def _http_error(error: HTTPException) -> tuple[Response, int, dict[str, Any]]:
    data = getattr(error, "data", None) or {}
    payload: dict[str, Any] = {
        "code": error.code,
        "status": error.name,
        "message": data.get("message") or error.description,
    }
    if isinstance(error, RequestEntityTooLarge) and request.endpoint == "jobs.JobBatch":
        payload["message"] = (
            f"The batch body is larger than MAX_BATCH_BYTES={current_app.config['MAX_BATCH_BYTES']} bytes; "
            "split it into smaller batches."
        )
    elif isinstance(error, RequestEntityTooLarge):
        payload["message"] = (
            f"The request body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes; "
            f"input_text may hold at most MAX_INPUT_CHARS={current_app.config['MAX_INPUT_CHARS']} characters."
        )
    if data.get("messages"):
        payload["errors"] = data["messages"]
        if not data.get("message"):
            payload["message"] = "The request is invalid; `errors` names each field and what is wrong."
    headers = dict(data.get("headers") or {})
    if error.code == 405 and error.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    return jsonify(payload), error.code or 500, headers


def _jobsvc_error(error: JobsvcError) -> tuple[Response, int, dict[str, str]]:
    status = error.http_status
    payload = {"code": status, "status": HTTP_STATUS_NAMES.get(status, "Error"), "message": str(error)}
    return jsonify(payload), status, dict(error.headers)


# What drivers say when no connection could be made (psycopg, SQLite), as opposed to errors
# inside a working connection.
_CONNECTION_WORDS = ("refused", "could not connect", "connection", "timeout", "timed out", "unable to open",
                     "database is locked", "server closed", "no route", "name or service")  # fmt: skip


def _database_error(error: OperationalError | PoolTimeout) -> tuple[Response, int, dict[str, str]]:
    # The driver's words stay in the log: they may name the user; the client gets host and port.
    log.error("database unavailable: %s", error)
    url = db.engine.url
    where = f"{url.host}:{url.port or 5432}" if url.host else "the SQLite file"
    text = str(error.orig).lower() if isinstance(error, OperationalError) else ""
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return _jobsvc_error(SchemaOutOfDate())
    if not isinstance(error, PoolTimeout) and not any(word in text for word in _CONNECTION_WORDS):
        # Not a connection failure (a disk error, say): a bug or a broken server, so a 500.
        log.exception("database error", exc_info=error)
        return _http_error(InternalServerError())
    if isinstance(error, PoolTimeout):
        reason = "every pooled connection is busy"
    elif "refused" in text:
        reason = "connection refused"
    elif "timeout" in text or "timed out" in text:
        reason = "no answer within DB_CONNECT_TIMEOUT"
    else:
        reason = "see the server log"
    return _jobsvc_error(DatabaseUnavailable(where, reason))


def init_app(app: Flask) -> None:
    """Answer every HTTP error, 500 included, as `{code, status, message[, errors]}`."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(JobsvcError, _jobsvc_error)
    app.register_error_handler(OperationalError, _database_error)
    app.register_error_handler(PoolTimeout, _database_error)
