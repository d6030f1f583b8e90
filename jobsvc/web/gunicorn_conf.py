"""gunicorn settings, from jobsvc's configuration: `gunicorn -c python:jobsvc.web.gunicorn_conf wsgi:app`."""

from __future__ import annotations

from typing import Any

from jobsvc.config import read_settings

_settings = read_settings()

bind = f"{_settings['HOST']}:{_settings['PORT']}"
workers = _settings["WEB_CONCURRENCY"]
# Threads, not greenlets: SQLite and libpq calls block, and a waiter is a sleeping thread.
worker_class = "gthread"
threads = _settings["WEB_THREADS"]
# Build the app once in the master, then fork: workers share its memory and start fast.
preload_app = True
accesslog = "-"
# The request id too, as the app echoes it: one id ties the access line to the app's lines.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms [%({x-request-id}o)s]'
graceful_timeout = 30
# The control socket defaults to one path in $HOME, shared by every gunicorn on the box.
control_socket_disable = True


def when_ready(server: Any) -> None:
    """Say where the docs are once the server listens."""
    for address in server.LISTENERS:
        server.log.info("jobsvc is up: API docs at %s/docs/", address)
