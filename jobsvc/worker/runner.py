"""The worker process: WORKER_CONCURRENCY RQ workers on QUEUE_NAME, one per thread, in one app."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import uuid
from typing import Any

from flask import Flask
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.timeouts import TimerDeathPenalty

from jobsvc.config import timeout_warnings
from jobsvc.core.models import utcnow
from jobsvc.core.queue import blocking_redis, explain_redis_error, get_redis, webhooks_queue_name
from jobsvc.core.workers import host_label
from jobsvc.worker.recovery import Reconciler

log = logging.getLogger(__name__)


def wait_for_redis(app: Flask, poll_seconds: float = 0.5, stop: threading.Event | None = None) -> None:
    """Block until Redis answers (or `stop` is set), saying every few seconds what it waits for."""
    last_said = 0.0
    while stop is None or not stop.is_set():
        try:
            get_redis().ping()
            return
        except RedisError as exc:
            if time.monotonic() - last_said > 5:
                log.warning(
                    "waiting for Redis at %s: %s",
                    _safe_url(app.config["REDIS_URL"]),
                    explain_redis_error(exc),
                )
                last_said = time.monotonic()
            time.sleep(poll_seconds)


def _safe_url(url: str) -> str:
    # Never log a password that the URL may carry.
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


class SlotWorker(SimpleWorker):
    """An RQ worker that runs its jobs in its own thread; WORKER_CONCURRENCY of them share a process.

    Each is a whole RQ worker (registration, heartbeats, started-job registry), as RQ's
    "start more workers" advice intends, but a thread costs kilobytes where a process
    costs about 220 MB (measured in bench/), and an LLM job mostly waits on the network.
    """

    # Timeouts by timer thread and async exception: SIGALRM reaches only the main thread.
    death_penalty_class = TimerDeathPenalty

    # How long an idle slot waits in BLPOP before it looks whether it should stop.
    poll_seconds = 2

    @property
    def dequeue_timeout(self) -> int:  # type: ignore[override]
        return self.poll_seconds

    def _install_signal_handlers(self) -> None:
        # Signals reach the main thread only; run_slots asks every slot to stop.
        pass

    def request_warm_stop(self) -> None:
        """Finish the current job (if any), then leave the work loop."""
        self._shutdown_requested_date = utcnow()
        self._stop_requested = True

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        # RQ's idle loop only ends on a signal; a slot looks up from BLPOP every
        # `timeout` seconds to see whether it was asked to stop.
        if timeout is None:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        while not self._stop_requested:
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=timeout)
            if result is not None:
                return result
        raise StopRequested()


def _slot_queues(app: Flask, slot: int, job_slots: int) -> list[str]:
    """The queue a slot listens on: job slots first, then webhook delivery slots of their own."""
    name = app.config["QUEUE_NAME"]
    return [name] if slot < job_slots else [webhooks_queue_name(name)]


def _run_slot(
    app: Flask, slot: int, slots: list[SlotWorker], stop: threading.Event, burst: bool, job_slots: int
) -> None:
    """One slot: an RQ worker loop, started again after any unexpected end until a stop."""
    with app.app_context():
        while not stop.is_set():
            wait_for_redis(app, stop=stop)
            if stop.is_set():
                return
            connection = blocking_redis()
            worker = SlotWorker(
                [Queue(name, connection=connection) for name in _slot_queues(app, slot, job_slots)],
                connection=connection,
                name=f"{host_label(app.config)}.{os.getpid()}.{slot}.{uuid.uuid4().hex[:6]}",
            )
            # Retry Redis every few seconds, not RQ's default of up to a minute.
            worker.max_connection_wait_time = 5.0
            slots[slot] = worker
            if stop.is_set():  # a stop that came while this worker was being built
                worker.request_warm_stop()
            try:
                # The first delivery slot runs the scheduler (RQ takes a lock per queue): it
                # moves webhook retries onto the deliveries queue when their delay is up.
                worker.work(
                    burst=burst, logging_level=app.config["LOG_LEVEL"], with_scheduler=slot == job_slots
                )
            except RedisError as exc:
                log.warning("worker slot %d lost Redis (%s); starting over when it is back", slot, exc)
                continue
            # RQ's work() also returns after logging an unexpected error (Redis vanishing
            # mid-job, say): only a stop or the end of a burst ends the slot.
            if burst or stop.is_set():
                return
            log.warning("worker slot %d loop ended without a stop request; starting a new one", slot)
            time.sleep(1)


def run_worker(app: Flask, *, burst: bool = False) -> None:
    """Run WORKER_CONCURRENCY slots over WORKER_PROCESSES processes until SIGTERM or SIGINT.

    Current jobs finish first. One process per core by default: a process's threads
    share one core (the GIL), and RQ's per-job bookkeeping is CPU work.
    """
    for warning in timeout_warnings(app.config):
        log.warning(warning)
    concurrency = app.config["WORKER_CONCURRENCY"]
    processes = min(app.config["WORKER_PROCESSES"] or os.cpu_count() or 1, concurrency)
    shares = [concurrency // processes + (n < concurrency % processes) for n in range(processes)]
    if processes == 1:
        run_slots(app, concurrency, burst=burst)
    else:
        _supervise(app, shares, burst=burst)


def _supervise(app: Flask, shares: list[int], *, burst: bool) -> None:
    """Fork one child per share of slots; restart a child that dies; pass a stop on to all."""
    children: dict[int, int] = {}  # pid -> its number of slots
    stopping = False

    def spawn(slots: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                run_slots(app, slots, burst=burst)
            except BaseException:
                log.exception("worker process %d crashed", os.getpid())
                code = 1
            finally:
                os._exit(code)
        children[pid] = slots

    def request_stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for slots in shares:
            spawn(slots)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            slots = children.pop(pid, 0)
            if not slots or stopping or burst:
                continue
            # Killed (OOM, kill -9) or crashed: its jobs' leases lapse and the reconciler reruns them.
            log.warning("worker process %d ended (status %d); starting another", pid, status)
            time.sleep(1)
            spawn(slots)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_slots(app: Flask, concurrency: int, *, burst: bool = False) -> None:
    """Run `concurrency` slots in this process until SIGTERM or SIGINT (current jobs finish first)."""
    stop = threading.Event()
    total = concurrency + app.config["WEBHOOK_CONCURRENCY"]
    slots: list[SlotWorker] = [None] * total  # type: ignore[list-item]

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("worker got %s: finishing current jobs, then stopping", signal.Signals(signum).name)
        stop.set()
        for worker in slots:
            if worker is not None:
                worker.request_warm_stop()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    with app.app_context():
        reconciler = Reconciler(app)
        reconciler.start()
        threads = [
            threading.Thread(
                target=_run_slot, args=(app, n, slots, stop, burst, concurrency), name=f"slot-{n}"
            )
            for n in range(total)
        ]
        log.info(
            "worker %d: %d job slots on queue %r, %d webhook slots",
            os.getpid(),
            concurrency,
            app.config["QUEUE_NAME"],
            total - concurrency,
        )
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                # Join in slices: the main thread must stay free to take signals.
                while thread.is_alive():
                    thread.join(0.5)
        finally:
            reconciler.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
