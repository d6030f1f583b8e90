"""The RQ dashboard at /rq, on the app's own Redis, behind HTTP basic auth (the admin at /admin too).

rq-dashboard's blueprint is one module-level object shared by every app in the process,
so nothing is attached to it here: the guard is a before-request hook on each app.
"""

from __future__ import annotations

import hmac
import ipaddress

import rq_dashboard
from flask import Flask, Response, current_app, request
from flask_smorest import abort

from jobsvc.web import admin

PREFIX = "/rq"


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _guard() -> Response | None:
    if request.blueprint != rq_dashboard.blueprint.name and request.blueprint not in admin.BLUEPRINTS:
        return None
    password = current_app.config["ADMIN_PASSWORD"]
    if not password:
        if _is_loopback(request.remote_addr):
            return None
        abort(403, message="/rq and /admin answer only loopback requests until ADMIN_PASSWORD is set.")
    auth = request.authorization
    given_user = (auth.username or "") if auth else ""
    given_password = (auth.password or "") if auth else ""
    # Both compared, in constant time, whatever the first one says.
    user_ok = hmac.compare_digest(given_user.encode(), current_app.config["ADMIN_USERNAME"].encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (user_ok and password_ok):
        abort(
            401,
            message="/rq and /admin need ADMIN_USERNAME and ADMIN_PASSWORD (HTTP basic auth).",
            headers={"WWW-Authenticate": 'Basic realm="jobsvc admin"'},
        )
    return None


def init_app(app: Flask) -> None:
    """Mount the dashboard at /rq, connected to REDIS_URL, guarded by `_guard`."""
    app.config.from_object(rq_dashboard.default_settings)
    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
    app.before_request(_guard)
