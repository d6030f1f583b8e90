"""Lease renewal: one thread per worker process renews the lease of every job it runs."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from jobsvc.core import store

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews, every LEASE_SECONDS / 3, the lease of each run this process holds.

    One thread for all of a process's runs, instead of one started and joined per job: a
    worker with hundreds of slots runs hundreds of jobs at once. The thread starts with
    the first lease held in a process (after a fork, never before) and lives as long as it.
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, Flask]] = {}  # job id -> (lease owner, its app)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    @contextmanager
    def holding(self, app: Flask, job_id: str, owner: str) -> Iterator[None]:
        """Keep `owner`'s lease on the job renewed until the block ends (or the process dies)."""
        with self._lock:
            self._held[job_id] = (owner, app)
            self._start(app.config["LEASE_SECONDS"])
        try:
            yield
        finally:
            with self._lock:
                if self._held.get(job_id, ("",))[0] == owner:
                    del self._held[job_id]

    def held(self) -> dict[str, str]:
        """The runs this process holds a lease for: job id -> lease owner."""
        with self._lock:
            return {job_id: owner for job_id, (owner, _app) in self._held.items()}

    def _start(self, lease_seconds: int) -> None:
        # A forked child inherits the parent's dict but not its thread: start its own.
        if self._thread is not None and self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(
            target=self._renew_forever, args=(lease_seconds,), name="lease-keeper", daemon=True
        )
        self._thread.start()

    def _renew_forever(self, lease_seconds: int) -> None:
        stop = threading.Event()  # never set: the thread ends with its process
        while not stop.wait(lease_seconds / 3):
            self.renew_all()

    def renew_all(self) -> None:
        """Renew each held lease once; a lease found lost is no longer renewed."""
        with self._lock:
            held = dict(self._held)
        for job_id, (owner, app) in held.items():
            try:
                with app.app_context():
                    renewed = store.renew_lease(job_id, owner, app.config["LEASE_SECONDS"])
            except Exception:
                # A missed renewal is survivable; the next one may succeed before expiry.
                log.exception("job %s lease renewal failed", job_id)
                continue
            if not renewed:
                log.warning("job %s lease lost by %s", job_id, owner)
                with self._lock:
                    if self._held.get(job_id, ("",))[0] == owner:
                        del self._held[job_id]


keeper = LeaseKeeper()
