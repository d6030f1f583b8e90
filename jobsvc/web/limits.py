"""Rate limits per API key (or client address), counted in Redis so every web process agrees."""

from __future__ import annotations

import hashlib

from flask import Blueprint, Flask, current_app, request
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix


def rate_limit_key() -> str:
    """Whose budget a request spends: its bearer token (hashed), else its client address."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if current_app.config["API_KEYS"] and scheme.lower() == "bearer" and token.strip():
        return "key:" + hashlib.sha256(token.strip().encode()).hexdigest()[:24]
    return f"addr:{request.remote_addr}"


def limiter_storage_uri(redis_url: str) -> str:
    """The `limits` library's name for the same Redis."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    return redis_url


def init_app(app: Flask, blueprint: Blueprint) -> None:
    """Apply RATE_LIMIT to every request of `blueprint`; trust PROXY_FIX proxies for addresses."""
    if app.config["PROXY_FIX"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_FIX"])  # type: ignore[method-assign]
    if not app.config["RATE_LIMIT"]:
        # No limit: no Limiter in the request path at all (it costs CPU on every request).
        return
    app.config.update(
        RATELIMIT_STORAGE_URI=limiter_storage_uri(app.config["REDIS_URL"]),
        RATELIMIT_HEADERS_ENABLED=True,
        # With Redis down, serving without limits beats failing every request.
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_KEY_PREFIX=f"jobsvc:{app.config['QUEUE_NAME']}",
    )
    # One Limiter per app, like the Api: each keeps its own storage.
    limiter = Limiter(key_func=rate_limit_key, app=app)
    limiter.limit(lambda: current_app.config["RATE_LIMIT"])(blueprint)
