"""The RQ dashboard at /rq, on the app's own Redis, behind HTTP basic auth.

rq-dashboard's blueprint is one module-level object shared by every app in the process,
so nothing is attached to it here: the guard is a before-request hook on each app.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import rq_dashboard
from flask import Flask, Response, current_app, request
from flask_smorest import abort

from jobsvc.core.queue import tls_options

PREFIX = "/rq"


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _guard() -> Response | None:
    if request.blueprint != rq_dashboard.blueprint.name:
        return None
    password = current_app.config["ADMIN_PASSWORD"]
    if not password:
        if _is_loopback(request.remote_addr):
            return None
        abort(403, message="The RQ dashboard answers only loopback requests until ADMIN_PASSWORD is set.")
    auth = request.authorization
    given_user = (auth.username or "") if auth else ""
    given_password = (auth.password or "") if auth else ""
    # Both compared, in constant time, whatever the first one says.
    user_ok = hmac.compare_digest(given_user.encode(), current_app.config["ADMIN_USERNAME"].encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (user_ok and password_ok):
        abort(
            401,
            message="The RQ dashboard needs ADMIN_USERNAME and ADMIN_PASSWORD (HTTP basic auth).",
            headers={"WWW-Authenticate": 'Basic realm="jobsvc admin"'},
        )
    return None


def dashboard_redis_url(config: Mapping[str, Any]) -> str:
    """REDIS_URL with its TLS options in the query string.

    rq-dashboard builds its clients from the URL alone, again on each request, so the
    options travel in it (redis-py's from_url reads them there).
    """
    url = config["REDIS_URL"]
    options = tls_options(config)
    if not options:
        return url
    query = urlencode({key: str(value).lower() for key, value in options.items()})
    return f"{url}{'&' if '?' in url else '?'}{query}"


def init_app(app: Flask) -> None:
    """Mount the dashboard at /rq, connected to REDIS_URL, guarded by `_guard`."""
    app.config.from_object(rq_dashboard.default_settings)
    app.config["RQ_DASHBOARD_REDIS_URL"] = dashboard_redis_url(app.config)
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
    app.before_request(_guard)
