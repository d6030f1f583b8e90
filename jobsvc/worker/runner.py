"""The worker process: one RQ worker per queue, each feeding a pool of slot threads, in one app."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.timeouts import TimerDeathPenalty

from jobsvc.config import timeout_warnings
from jobsvc.core.models import utcnow
from jobsvc.core.queue import blocking_redis, explain_redis_error, webhooks_queue_name
from jobsvc.core.workers import host_label
from jobsvc.worker import deliveries  # noqa: F401  (see below)
from jobsvc.worker.recovery import Reconciler
from jobsvc.worker.tasks import hand_back_runs

log = logging.getLogger(__name__)

# The modules of the functions RQ runs (tasks, deliveries) are imported here, before any slot
# thread starts: RQ imports a job's function on first use, and `deliveries` imports httpx,
# which the openai SDK looks up in sys.modules without the import lock. A delivery's first
# import racing a job's first OpenAI client gave "partially initialized module 'httpx'".


def wait_for_redis(
    app: Flask, connection: Redis, poll_seconds: float = 0.5, stop: threading.Event | None = None
) -> None:
    """Block until Redis answers (or `stop` is set), saying every few seconds what it waits for."""
    last_said = 0.0
    while stop is None or not stop.is_set():
        try:
            connection.ping()
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


def slot_redis() -> Redis:
    """A slot's Redis client: blocking reads, and at most one immediate retry of a command.

    redis-py 8 retries a failed command 10 times with backoff (seconds, with connect
    timeouts); in a slot that hides an outage from the loop that decides, stop-aware,
    when to try again, and so holds up a stop.
    """
    connection = blocking_redis()
    connection.set_retry(Retry(NoBackoff(), 1))  # one retry: a pooled connection from before a restart
    return connection


def _safe_url(url: str) -> str:
    # Never log a password that the URL may carry.
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


class _RedisAway(Exception):
    """Redis stopped answering while a slot was idle (deliberately not a RedisError: RQ retries those)."""


class PoolWorker(SimpleWorker):
    """One RQ worker that feeds a pool of `slots` threads: a process's whole share of the work.

    It dequeues a job only while a slot is free, and runs each job in a slot thread through
    RQ's own `perform_job`: the job is in StartedJobRegistry while it runs, finished or
    failed after, and the worker shows one Execution per running job. One registration,
    one heartbeat and one BLPOP per process, instead of one per slot; its name ends in
    `.x<slots>` so the dashboard says how many slots it feeds.

    Written against RQ 3.0.0's Worker (pinned by tests/test_pool.py and tests/test_stopping.py),
    which keeps a dict of executions per worker: several at once is its own model. An idle
    worker leaves RQ's work loop when asked to stop or when Redis goes away; RQ itself would
    retry Redis forever in `dequeue_job_and_maintain_ttl` without looking at a stop.
    """

    # Timeouts by timer thread and async exception, aimed at the slot thread running the job.
    death_penalty_class = TimerDeathPenalty

    # How long an idle worker waits in BLPOP (or for a free slot) before it looks whether it
    # should stop: a stop reaches it within a second, before `make run`'s embedded Redis leaves.
    poll_seconds = 1

    # True while the worker waits for a job (in RQ's dequeue loop), not while it hands one over.
    _idle = False
    # Set when the worker left RQ's loop because Redis went away (not because of a stop).
    lost_redis = False

    def __init__(self, queues: list[Queue], *, app: Flask, slots: int, **kwargs: Any) -> None:
        super().__init__(queues, **kwargs)
        self.app = app
        self.slots = slots
        self._free = threading.Semaphore(slots)
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix=f"{self.queue_names()[0]}-slot")

    @property
    def dequeue_timeout(self) -> int:  # type: ignore[override]
        return self.poll_seconds

    def _install_signal_handlers(self) -> None:
        # Signals reach the main thread only; run_slots asks every worker to stop.
        pass

    def request_warm_stop(self) -> None:
        """Finish the current jobs (if any), then leave the work loop."""
        self._shutdown_requested_date = utcnow()
        self._stop_requested = True

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        # A job is taken only when a slot is free to run it: while every slot is busy, the
        # jobs wait in Redis, where any other worker process can take them.
        while not self._stop_requested:
            if not self._free.acquire(timeout=self.poll_seconds):
                self._keep_registered()
                continue
            try:
                result = self._dequeue(timeout, max_idle_time)
            except BaseException:
                self._free.release()
                raise
            if result is not None:
                return result  # its slot is released when the job ends
            self._free.release()
            if timeout is None:  # burst: one look at the queue, and nothing in it
                return None
        raise StopRequested()

    def _dequeue(self, timeout: int | None, max_idle_time: int | None) -> Any:
        if timeout is None:  # burst: one look at the queue
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        # RQ's idle loop only ends on a signal; this one looks up from BLPOP every
        # `timeout` seconds to see whether it was asked to stop.
        self._idle = True
        try:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=timeout)
        except (_RedisAway, RedisError):
            # Wait for Redis outside RQ's loop, where a stop is seen (see _run_pool).
            self.lost_redis = True
            raise StopRequested() from None
        finally:
            self._idle = False

    def _keep_registered(self) -> None:
        """Every slot is busy: keep this worker alive in RQ's worker list meanwhile."""
        with contextlib.suppress(RedisError):  # the jobs go on; RQ's loop notices Redis
            self.heartbeat()

    def execute_job(self, job: Any, queue: Queue) -> None:
        """Hand the job to a free slot thread (the dequeue took its slot)."""
        try:
            execution = self.prepare_execution(job)
            self._pool.submit(self._perform, job, queue, execution)
        except BaseException:
            self._free.release()
            raise

    def _perform(self, job: Any, queue: Queue, execution: Any) -> None:
        try:
            with self.app.app_context():
                self.perform_job(job, queue, execution)
        except RedisError as exc:
            # The job's own outcome is in its row; only RQ's record of it is missing.
            log.warning("job %s: RQ could not record its end: %s", job.id, explain_redis_error(exc))
        except Exception:
            log.exception("job %s: RQ could not record its end", job.id)
        finally:
            self._free.release()

    # RQ's loop sends a heartbeat (three round trips) before and after each dequeue and
    # after each job: three per job, from the one thread that feeds every slot. A worker's
    # registration lives for minutes (worker_ttl), so one a second is plenty.
    heartbeat_every = 0.5
    _beat_at = -math.inf

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        # RQ's dequeue loop calls this first on every pass, including each retry after a
        # Redis error, and retries Redis forever without looking at _stop_requested: that is
        # why a worker told to stop while Redis was away never left. An idle worker leaves
        # instead (a job dequeued just before Redis went is still pending in the database,
        # and the reconciler queues it again). Those passes come at least a second apart
        # (BLPOP's timeout, RQ's first wait after an error), so none of them is skipped.
        if pipeline is not None or timeout is not None:
            return super().heartbeat(timeout, pipeline)
        if time.monotonic() - self._beat_at < self.heartbeat_every:
            return None
        try:
            super().heartbeat()
        except RedisError as exc:
            if self._idle:
                raise _RedisAway() from exc
            raise
        self._beat_at = time.monotonic()
        return None

    def unsubscribe(self) -> None:
        # Stop the pubsub thread before RQ sends UNSUBSCRIBE: the reply then ends its wait
        # for a message at once, instead of RQ's join waiting out its one-second timeout.
        if self.pubsub_thread is not None:
            self.pubsub_thread.stop()
        super().unsubscribe()

    def teardown(self) -> None:
        # The jobs in the slots end first (or WORKER_SHUTDOWN_GRACE ends the process).
        self._pool.shutdown(wait=True)
        try:
            super().teardown()
        except RedisError:
            # RQ's teardown stops at the first Redis error, before its pubsub thread (which
            # would retry Redis, and log it, for as long as the process lives).
            if self.pubsub_thread is not None:
                self.pubsub_thread.stop()
            raise


def _pools(app: Flask, job_slots: int) -> list[tuple[str, int]]:
    """Each RQ worker of a process: its queue and its slots (jobs, then webhook deliveries)."""
    name = app.config["QUEUE_NAME"]
    pools = [(name, job_slots), (webhooks_queue_name(name), app.config["WEBHOOK_CONCURRENCY"])]
    return [(queue, slots) for queue, slots in pools if slots > 0]


def _run_pool(
    app: Flask, index: int, queue_name: str, slots: int, workers: list[PoolWorker],
    stop: threading.Event, burst: bool,
) -> None:  # fmt: skip
    """One pool: an RQ worker loop feeding `slots` threads, started again after any unexpected end."""
    with app.app_context():
        while not stop.is_set():
            connection = slot_redis()
            wait_for_redis(app, connection, stop=stop)
            if stop.is_set():
                return
            kind = "webhooks." if queue_name != app.config["QUEUE_NAME"] else ""
            worker = PoolWorker(
                [Queue(queue_name, connection=connection)],
                app=app,
                slots=slots,
                connection=connection,
                name=f"{host_label(app.config)}.{os.getpid()}.{kind}x{slots}.{uuid.uuid4().hex[:6]}",
            )
            workers[index] = worker
            if stop.is_set():  # a stop that came while this worker was being built
                worker.request_warm_stop()
            try:
                # No RQ scheduler: nothing is enqueued for later (a webhook's next attempt is
                # due by its row, and the reconciler queues it), so no scheduler process is forked.
                worker.work(burst=burst, logging_level=app.config["LOG_LEVEL"], with_scheduler=False)
            except RedisError as exc:
                worker.lost_redis = True
                log.debug("worker %s could not say goodbye to Redis: %s", worker.name, exc)
            if worker.lost_redis and not stop.is_set():
                log.warning("worker %s lost Redis; starting over when it is back", worker.name)
                continue
            # RQ's work() also returns after logging an unexpected error (Redis vanishing
            # mid-job, say): only a stop or the end of a burst ends the pool.
            if burst or stop.is_set():
                return
            log.warning("worker %s loop ended without a stop request; starting a new one", worker.name)
            stop.wait(1)


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def run_worker(app: Flask, *, burst: bool = False) -> None:
    """Run WORKER_CONCURRENCY slots over WORKER_PROCESSES processes until SIGTERM or SIGINT.

    Current jobs get WORKER_SHUTDOWN_GRACE seconds to finish. One process per core by
    default: a process's threads share one core (the GIL), and RQ's per-job bookkeeping
    is CPU work.
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
        # Stop signals stay blocked across the fork: a stop cannot fall between the check
        # below and the fork (the child would never hear it), the parent has recorded the
        # child before its handler runs, and the child unblocks them once its own handlers
        # are in place (run_slots).
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            if stopping:
                return
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    run_slots(app, slots, burst=burst, supervisor=os.getppid())
                except BaseException:
                    log.exception("worker process %d crashed", os.getpid())
                    code = 1
                finally:
                    os._exit(code)
            children[pid] = slots
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def request_stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, request_stop) for sig in _STOP_SIGNALS}
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
            spawn(slots)  # not if a stop came during the pause
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_slots(app: Flask, concurrency: int, *, burst: bool = False, supervisor: int | None = None) -> None:
    """Run `concurrency` slots in this process until SIGTERM or SIGINT, or until `supervisor`
    (the pid of the process that forked this one) is gone.

    On a stop, current jobs get WORKER_SHUTDOWN_GRACE seconds to finish; those still running
    then are handed back (pending, re-enqueued, checkpoints kept) and the process exits.
    """
    stop = threading.Event()
    pools = _pools(app, concurrency)
    workers: list[PoolWorker] = [None] * len(pools)  # type: ignore[list-item]
    reconciler = Reconciler(app)

    def stop_all() -> None:
        stop.set()
        reconciler.stop()  # takes this worker off the live list now: it takes no new work
        for worker in workers:
            if worker is not None:
                worker.request_warm_stop()

    signalled: list[int] = []

    def request_stop(signum: int, _frame: Any) -> None:
        # Only note it: the main thread's loop acts on it. A handler that set an Event could
        # interrupt that Event's own set() (a second signal) and deadlock on its lock.
        signalled.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in _STOP_SIGNALS}
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked by _supervise across the fork
    with app.app_context():
        reconciler.start()
        threads = [
            threading.Thread(
                target=_run_pool, args=(app, n, queue, size, workers, stop, burst), name=f"rq-{queue}"
            )
            for n, (queue, size) in enumerate(pools)
        ]
        log.info(
            "worker %d: %d job slots on queue %r, %d webhook slots",
            os.getpid(),
            concurrency,
            app.config["QUEUE_NAME"],
            app.config["WEBHOOK_CONCURRENCY"],
        )
        try:
            for thread in threads:
                thread.start()
            deadline = None
            # The main thread stays free to take signals, and watches the supervisor and the grace.
            while any(thread.is_alive() for thread in threads):
                time.sleep(0.1)
                if signalled and not stop.is_set():
                    name = signal.Signals(signalled[0]).name
                    log.info("worker got %s: finishing current jobs, then stopping", name)
                    stop_all()
                if supervisor is not None and os.getppid() != supervisor and not stop.is_set():
                    log.warning(
                        "worker %d: its supervisor is gone; finishing current jobs, then stopping",
                        os.getpid(),
                    )
                    stop_all()
                if stop.is_set() and deadline is None:
                    deadline = time.monotonic() + app.config["WORKER_SHUTDOWN_GRACE"]
                if deadline is not None and time.monotonic() >= deadline:
                    _leave_now(app, workers, reconciler)
        finally:
            reconciler.stop()
            reconciler.join(timeout=1)  # it takes this worker off the live list as it ends
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _leave_now(app: Flask, workers: list[PoolWorker], reconciler: Reconciler) -> None:
    """WORKER_SHUTDOWN_GRACE is over: hand back the runs still in progress, then end the process.

    Another worker resumes each job at once (no wait for its lease to lapse), from its
    checkpoint; the process ends before a platform's kill would cut it off anywhere.
    """
    handed = hand_back_runs()
    log.warning(
        "worker %d: WORKER_SHUTDOWN_GRACE=%gs is over; handed back %d running jobs (%s), leaving now",
        os.getpid(),
        app.config["WORKER_SHUTDOWN_GRACE"],
        len(handed),
        ", ".join(handed[:10]),
    )
    reconciler.join(timeout=1)
    for worker in workers:
        if worker is None:
            continue
        with contextlib.suppress(Exception):  # a goodbye to RQ's worker list, where Redis answers
            worker.register_death()
    logging.shutdown()
    os._exit(0)
