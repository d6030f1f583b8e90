"""The RQ dashboard at /rq, on the app's own Redis; `jobsvc.web.admin_guard` guards it.

rq-dashboard's blueprint is one module-level object shared by every app in the process,
so nothing is attached to it here: the guard is a before-request hook on each app.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import rq_dashboard
from flask import Flask

from jobsvc.core.queue import tls_options

PREFIX = "/rq"


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
    """Mount the dashboard at /rq (an admin prefix), connected to REDIS_URL."""
    app.config.from_object(rq_dashboard.default_settings)
    app.config["RQ_DASHBOARD_REDIS_URL"] = dashboard_redis_url(app.config)
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
