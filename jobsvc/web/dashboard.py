"""The RQ dashboard at /rq, on the app's own Redis; `jobsvc.web.admin_guard` guards it.

rq-dashboard's blueprint is one module-level object shared by every app in the process,
so nothing is attached to it here: the guard is a before-request hook on each app.
"""

from __future__ import annotations

import rq_dashboard
from flask import Flask

PREFIX = "/rq"


def init_app(app: Flask) -> None:
    """Mount the dashboard at /rq (an admin prefix), connected to REDIS_URL."""
    app.config.from_object(rq_dashboard.default_settings)
    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
