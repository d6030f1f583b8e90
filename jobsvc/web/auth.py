"""Who is calling: the API key a request's bearer token matches, by name.

The rate limiter needs the answer before the jobs blueprint's own hooks run, so it is
worked out once per request, here, and kept on `g`.
"""

from __future__ import annotations

import hmac

from flask import current_app, g, request
from flask_smorest import abort

_UNSET = object()


def api_client() -> str | None:
    """The name of the API key that the request's `Authorization: Bearer` token matches, or None."""
    cached = g.get("api_client", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    offered = token.strip().encode()
    name = None
    # Compared with every key, in constant time, so timing tells nothing about any of them.
    for key in current_app.config["API_KEYS"] or ():
        if hmac.compare_digest(offered, key.secret.encode()) and scheme.lower() == "bearer":
            name = key.name
    g.api_client = name
    return name


def owner_filter() -> str | None:
    """Whose jobs the caller may see: its key's name with API_KEYS set, else everyone's (None)."""
    if not current_app.config["API_KEYS"]:
        return None
    name = api_client()
    if name is None:  # fails closed, should a route ever skip the blueprint's authentication
        abort(401, message="Send a valid API key as the header Authorization: Bearer <key>.")
    return name


def new_job_owner() -> str:
    """The owner a new job gets: the caller's key name, or "" on a server without API keys."""
    return api_client() or ""
