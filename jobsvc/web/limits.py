"""Rate limits, counted in Redis so every web process agrees.

A request spends its API key's budget only once the key matched; anything else spends
its client address's budget. Failed authentications (an API key, the admin password, the
metrics token) share a budget of their own per address (AUTH_FAILURE_LIMIT): past it the
address is refused, right secret or not, so guessing is slow, and a guess never creates
a Redis key of its own.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, current_app, request
from flask_limiter import Limiter
from flask_smorest import abort
from limits import parse
from werkzeug.middleware.proxy_fix import ProxyFix

from jobsvc.core.queue import tls_options
from jobsvc.web.auth import api_client

log = logging.getLogger(__name__)


def rate_limit_key() -> str:
    """Whose budget a request spends: its API key's (by name) once matched, else its client address."""
    client = api_client() if current_app.config["API_KEYS"] else None
    return f"key:{client}" if client else f"addr:{request.remote_addr}"


def limiter_storage_uri(redis_url: str) -> str:
    """The `limits` library's name for the same Redis."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    return redis_url


def _failure_budget() -> tuple[object, tuple[str, ...]]:
    limit = parse(current_app.config["AUTH_FAILURE_LIMIT"])
    identifiers = (current_app.config["RATELIMIT_KEY_PREFIX"], "auth-failures", str(request.remote_addr))
    return limit, identifiers


def refuse_if_guessing() -> None:
    """Answer 429 if this address has failed authentication AUTH_FAILURE_LIMIT times in the window."""
    limiter = current_app.extensions["jobsvc.limiter"].limiter
    limit, identifiers = _failure_budget()
    try:
        if limiter.test(limit, *identifiers):
            return
        reset_at = limiter.get_window_stats(limit, *identifiers).reset_time
    except Exception as exc:  # like RATELIMIT_SWALLOW_ERRORS: without Redis, serve unlimited
        log.info("authentication failures not counted: %s", type(exc).__name__)
        return
    retry_after = max(1, math.ceil(reset_at - time.time()))
    abort(
        429,
        message=f"Too many failed authentications from this address; try again in {retry_after} seconds.",
        headers={"Retry-After": str(retry_after)},
    )


def count_failed_authentication() -> None:
    """Spend one unit of this address's budget of failed authentications."""
    limiter = current_app.extensions["jobsvc.limiter"].limiter
    limit, identifiers = _failure_budget()
    try:
        limiter.hit(limit, *identifiers)
    except Exception as exc:  # like RATELIMIT_SWALLOW_ERRORS
        log.info("authentication failure not counted: %s", type(exc).__name__)


def counts_anything(config: Mapping[str, Any]) -> bool:
    """Whether there is a request budget or a secret to guess (API keys, admin password, metrics token)."""
    secrets = ("API_KEYS", "ADMIN_PASSWORD", "METRICS_TOKEN")
    return bool(config["RATE_LIMIT"]) or any(config[key] for key in secrets)


def init_app(app: Flask, blueprint: Blueprint) -> None:
    """Apply RATE_LIMIT to every request of `blueprint`; trust PROXY_FIX proxies for addresses."""
    if app.config["PROXY_FIX"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_FIX"])  # type: ignore[method-assign]
    if not counts_anything(app.config):
        # Nothing to count (no budget, no secret to guess): no Limiter in the request path
        # at all, as it costs CPU on every request.
        return
    app.config.update(
        RATELIMIT_STORAGE_URI=limiter_storage_uri(app.config["REDIS_URL"]),
        # `limits` hands these to redis-py's from_url: the same TLS settings as every other client.
        RATELIMIT_STORAGE_OPTIONS=tls_options(app.config),
        RATELIMIT_HEADERS_ENABLED=True,
        # With Redis down, serving without limits beats failing every request.
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_KEY_PREFIX=f"jobsvc:{app.config['QUEUE_NAME']}",
    )
    # One Limiter per app, like the Api: each keeps its own storage.
    limiter = Limiter(key_func=rate_limit_key, app=app)
    app.extensions["jobsvc.limiter"] = limiter
    if app.config["RATE_LIMIT"]:
        limiter.limit(lambda: current_app.config["RATE_LIMIT"])(blueprint)
