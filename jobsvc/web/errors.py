"""The web edge of the error tree: one JSON shape for every error the app returns."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES as HTTP_STATUS_NAMES

from jobsvc.errors import JobsvcError


def _http_error(error: HTTPException) -> tuple[Response, int, dict[str, Any]]:
    data = getattr(error, "data", None) or {}
    payload: dict[str, Any] = {
        "code": error.code,
        "status": error.name,
        "message": data.get("message") or error.description,
    }
    if isinstance(error, RequestEntityTooLarge):
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


def init_app(app: Flask) -> None:
    """Answer every HTTP error, 500 included, as `{code, status, message[, errors]}`."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(JobsvcError, _jobsvc_error)
