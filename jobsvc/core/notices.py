"""Finished-job notices over Redis pub/sub, so that waiting clients need no polling.

Workers (and the web, on cancel) publish a job's id when it reaches a terminal status.
Each web process runs one subscriber thread that wakes the requests waiting for that id:
a waiter holds a thread, but no database connection and no Redis connection of its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app
from redis.exceptions import RedisError

from jobsvc.core.queue import blocking_redis, get_redis

log = logging.getLogger(__name__)

# Longest pause between attempts to subscribe again while Redis is away; waiters poll the
# database every second meanwhile, so this only delays their wake-up after an outage.
RECONNECT_MAX_SECONDS = 5.0


def channel(app: Flask) -> str:
    """The pub/sub channel for this deployment's finished jobs."""
    return f"jobsvc:{app.config['QUEUE_NAME']}:finished"


def publish_finished(job_id: str) -> None:
    """Tell waiting clients that the job has reached a terminal status (a notice; may be lost)."""
    try:
        get_redis().publish(channel(current_app), job_id)
    except RedisError as exc:
        # Waiters fall back to re-reading the database when their wait ends.
        log.warning("could not announce job %s: %s", job_id, type(exc).__name__)


class FinishedListener:
    """One subscriber thread per process; `watch(job_id)` yields an Event set when it finishes.

    At most `max_waiters` requests wait at once, so long polls leave threads for other requests.
    """

    def __init__(self, app: Flask, max_waiters: int) -> None:
        self.app = app
        self.max_waiters = max_waiters
        self._waiting = 0
        self._lock = threading.Lock()
        self._waiters: defaultdict[str, set[threading.Event]] = defaultdict(set)
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="jobsvc-finished", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        """How many requests wait for a notice now."""
        return self._waiting

    @contextmanager
    def watch(self, job_id: str) -> Iterator[threading.Event | None]:
        """Register before checking the job's state, so a finish in between is not missed.

        Yields None when `max_waiters` requests already wait: the caller answers at once.
        """
        event = threading.Event()
        with self._lock:
            if self._waiting >= self.max_waiters:
                event = None
            else:
                self._waiting += 1
                self._waiters[job_id].add(event)
        if event is None:
            yield None
            return
        try:
            yield event
        finally:
            with self._lock:
                self._waiting -= 1
                self._waiters[job_id].discard(event)
                if not self._waiters[job_id]:
                    del self._waiters[job_id]

    def _wake(self, job_id: str) -> None:
        with self._lock:
            for event in self._waiters.get(job_id, ()):
                event.set()

    def _listen(self) -> None:
        failures = 0
        while True:
            try:
                with self.app.app_context():
                    pubsub = blocking_redis().pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(channel(self.app))
                self.connected.set()
                if failures:
                    log.info("finished-job listener is back on Redis")
                failures = 0
                for message in pubsub.listen():
                    if message["type"] == "message":
                        self._wake(message["data"].decode())
            except (RedisError, OSError) as exc:
                self.connected.clear()
                # One warning per outage, not one a second: waiters poll the database meanwhile.
                if not failures:
                    log.warning("finished-job listener lost Redis (%s); reconnecting", type(exc).__name__)
                failures += 1
                # Wake everyone: they re-read the database rather than wait for a notice that may be lost.
                with self._lock:
                    for events in self._waiters.values():
                        for event in events:
                            event.set()
                time.sleep(min(RECONNECT_MAX_SECONDS, 0.5 * 2 ** min(failures, 6)))


def listener() -> FinishedListener:
    """This process's listener for the current app, started on first use (after any fork)."""
    state = current_app.extensions.setdefault("jobsvc.notices", {})
    if state.get("pid") != os.getpid():
        config = current_app.config
        state["listener"] = FinishedListener(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            max_waiters=config["MAX_WAITERS"] or max(1, config["WEB_THREADS"] // 2),
        )
        state["pid"] = os.getpid()
    return state["listener"]
