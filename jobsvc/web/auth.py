"""Who is calling: the API key a request's bearer token matches, by name.

The rate limiter needs the answer before the jobs blueprint's own hooks run, so it is
worked out once per request, here, and kept on `g`.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, g, request

from jobsvc.errors import Unauthorized

_UNSET = object()


def bearer_token() -> str | None:
    """The token of the request's `Authorization: Bearer <token>` header, or None without one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def same_secret(offered: str, secret: str) -> bool:
    """Whether `offered` is `secret`, in time that tells nothing about the secret, its length included.

    `hmac.compare_digest` returns at once for inputs of unequal length; comparing their
    SHA-256 digests, always 32 bytes, closes that.
    """
    return hmac.compare_digest(
        hashlib.sha256(offered.encode()).digest(), hashlib.sha256(secret.encode()).digest()
    )


def api_client() -> str | None:
    """The name of the API key that the request's `Authorization: Bearer` token matches, or None."""
    cached = g.get("api_client", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    offered = bearer_token()
    name = None
    if offered is not None:
        # Compared with every key, in constant time, so timing tells nothing about any of them.
        for key in current_app.config["API_KEYS"] or ():
            if same_secret(offered, key.secret):
                name = key.name
    g.api_client = name
    return name


def owner_filter() -> str | None:
    """Whose jobs the caller may see: its key's name with API_KEYS set, else everyone's (None)."""
    if not current_app.config["API_KEYS"]:
        return None
    name = api_client()
    if name is None:  # fails closed, should a route ever skip the blueprint's authentication
        raise Unauthorized()
    return name


def new_job_owner() -> str:
    """The owner a new job gets: the caller's key name, or "" on a server without API keys."""
    return api_client() or ""
