"""The worker process: an RQ worker on QUEUE_NAME inside an app built by the factory."""

from __future__ import annotations

import logging
import time

from flask import Flask
from redis.exceptions import RedisError
from rq import Worker

from .queue import get_queue, get_redis

log = logging.getLogger(__name__)


def wait_for_redis(app: Flask, poll_seconds: float = 0.5) -> None:
    """Block until Redis answers, saying every few seconds what it waits for."""
    last_said = 0.0
    while True:
        try:
            get_redis().ping()
            return
        except RedisError as exc:
            if time.monotonic() - last_said > 5:
                log.warning("waiting for Redis at %s: %s", _safe_url(app.config["REDIS_URL"]), exc)
                last_said = time.monotonic()
            time.sleep(poll_seconds)


def _safe_url(url: str) -> str:
    # Never log a password that the URL may carry.
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


def run_worker(app: Flask, *, burst: bool = False) -> bool:
    """Work the queue until stopped (SIGTERM finishes the current job first)."""
    with app.app_context():
        wait_for_redis(app)
        worker = Worker([get_queue()], connection=get_redis())
        return worker.work(burst=burst, logging_level=app.config["LOG_LEVEL"], with_scheduler=False)
