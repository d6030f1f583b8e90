"""gunicorn settings, from jobsvc's configuration: `gunicorn -c python:jobsvc.web.gunicorn_conf wsgi:app`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from jobsvc.config import read_settings

#: Seconds between a platform's SIGTERM and its SIGKILL (Heroku: 30; systemd's default: 90).
PLATFORM_KILL_SECONDS = 30
#: Seconds an idle keep-alive connection stays open. A router that reuses connections to the
#: app (Heroku's Router 2.0 does) must be the side that closes them: when gunicorn closes
#: first, a request the router sends at that moment meets a reset connection.
KEEPALIVE_SECONDS = 75


def timeouts(settings: Mapping[str, Any]) -> dict[str, int]:
    """gunicorn's timeouts, consistent with the longest request jobsvc serves (a WAIT_MAX_SECONDS poll).

    - `graceful_timeout`: after SIGTERM, a poll that just started may still run for
      WAIT_MAX_SECONDS; it gets that plus 1 s, within the platform's 30 s before SIGKILL
      while WAIT_MAX_SECONDS stays at most 28.
    - `timeout`: with gthread it is how long a process may fail to report to the master (a
      stuck process), not a request limit; never shorter than the longest poll.
    """
    longest = math.ceil(settings["WAIT_MAX_SECONDS"])
    return {
        "timeout": max(30, longest + 5),
        "graceful_timeout": longest + 1,
        "keepalive": KEEPALIVE_SECONDS,
    }


_settings = read_settings()
_timeouts = timeouts(_settings)

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
timeout = _timeouts["timeout"]
graceful_timeout = _timeouts["graceful_timeout"]
keepalive = _timeouts["keepalive"]
# The control socket defaults to one path in $HOME, shared by every gunicorn on the box.
control_socket_disable = True


def when_ready(server: Any) -> None:
    """Say where the docs are once the server listens."""
    for address in server.LISTENERS:
        server.log.info("jobsvc is up: API docs at %s/docs/", address)
