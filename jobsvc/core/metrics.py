"""Prometheus metrics that stay right with any number of web and worker processes.

Counters and histogram buckets are kept in Redis (atomic increments from every process);
gauges (queue depth, running jobs) are read at scrape time from Redis, in O(1): a scrape
never reads the jobs table. Recording never fails a job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import current_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from redis.exceptions import RedisError

from jobsvc.core.models import JobStatus
from jobsvc.core.queue import get_queue, get_redis
from jobsvc.llm.base import LLMError, Usage

log = logging.getLogger(__name__)

JOB_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def _key(name: str) -> str:
    return f"jobsvc:{current_app.config['QUEUE_NAME']}:metrics:{name}"


# Inside `batched()`, metrics go into this thread's pipeline rather than one round trip each.
_batch = threading.local()


@contextmanager
def batched() -> Iterator[None]:
    """Send the metrics recorded in the block to Redis in one round trip, at its end.

    They are sent however the block ends: a run that times out or crashes counts too.
    """
    _batch.pipe = get_redis().pipeline(transaction=False)  # no round trip until execute()
    try:
        yield
    finally:
        pipe, _batch.pipe = _batch.pipe, None
        try:
            pipe.execute()
        except RedisError as exc:
            log.info("metrics not recorded: %s", type(exc).__name__)


def _send(name: str, record: Callable[[Any], None]) -> None:
    pipe = getattr(_batch, "pipe", None)
    if pipe is not None:
        record(pipe)
        return
    try:
        pipe = get_redis().pipeline(transaction=False)
        record(pipe)
        pipe.execute()
    except RedisError as exc:
        log.info("metric %s not recorded: %s", name, type(exc).__name__)


def _increment(name: str, field: str, amount: float = 1) -> None:
    _send(name, lambda pipe: pipe.hincrbyfloat(_key(name), field, amount))


def _observe(name: str, seconds: float, buckets: tuple[float, ...]) -> None:
    def record(pipe: Any) -> None:
        for bound in buckets:
            if seconds <= bound:
                pipe.hincrbyfloat(_key(name), f"le:{bound}", 1)
        pipe.hincrbyfloat(_key(name), "le:+Inf", 1)
        pipe.hincrbyfloat(_key(name), "sum", seconds)

    _send(name, record)


def job_created(client: str = "") -> None:
    """Count a new job, in all and for the API key (by name) that created it."""

    def record(pipe: Any) -> None:  # one round trip for both
        pipe.hincrbyfloat(_key("jobs_created"), "total", 1)
        pipe.hincrbyfloat(_key("jobs_created_by_client"), client or "-", 1)

    _send("jobs_created", record)


def jobs_accepted(by_client: Mapping[str, int], pipeline: Any) -> None:
    """Count new jobs committed in one transaction, in all and per API key name, onto the
    caller's Redis pipeline: the enqueue's pipeline carries it, so it costs no round trip."""
    pipeline.hincrbyfloat(_key("jobs_created"), "total", sum(by_client.values()))
    for client, count in by_client.items():
        pipeline.hincrbyfloat(_key("jobs_created_by_client"), client or "-", count)
    pipeline.hincrbyfloat(_key("ingest_commits"), "total", 1)


def job_finished(status: JobStatus, seconds: float | None = None) -> None:
    """Count a job that reached `status`, and how long its last run took."""
    _increment("jobs_finished", status.value)
    if seconds is not None:
        _observe("job_duration", seconds, JOB_BUCKETS)


def tokens_used(usage: Usage) -> None:
    """Add a step's tokens."""
    _increment("tokens", "prompt", usage.prompt_tokens)
    _increment("tokens", "completion", usage.completion_tokens)


@contextmanager
def llm_call(step: str) -> Iterator[None]:
    """Time one pipeline step's provider call; count its error, if any, by kind."""
    started = time.perf_counter()
    try:
        yield
    except LLMError as exc:
        _increment("llm_errors", type(exc).__name__)
        raise
    finally:
        _observe(f"llm_latency:{step}", time.perf_counter() - started, LLM_BUCKETS)


def _read(name: str) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in get_redis().hgetall(_key(name)).items()}


def _histogram(
    family: HistogramMetricFamily, name: str, bounds: tuple[float, ...], labels: list[str]
) -> None:
    values = _read(name)
    buckets = [(str(bound), values.get(f"le:{bound}", 0.0)) for bound in (*bounds, "+Inf")]
    family.add_metric(labels, buckets, values.get("sum", 0.0))


class RedisCollector:
    """Builds every metric family from Redis and the database at scrape time."""

    def collect(self) -> Iterator[object]:
        created = CounterMetricFamily("jobsvc_jobs_created", "Jobs accepted.")
        created.add_metric([], _read("jobs_created").get("total", 0.0))
        yield created
        by_client = CounterMetricFamily(
            "jobsvc_client_jobs_created", "Jobs accepted, by API key name (`-`: none).", labels=["client"]
        )
        for client, count in sorted(_read("jobs_created_by_client").items()):
            by_client.add_metric([client], count)
        yield by_client
        commits = CounterMetricFamily(
            "jobsvc_ingest_commits",
            "Transactions that accepted new jobs; concurrent submissions share one (group commit).",
        )
        commits.add_metric([], _read("ingest_commits").get("total", 0.0))
        yield commits
        finished = CounterMetricFamily(
            "jobsvc_jobs_finished", "Jobs that ended, by status.", labels=["status"]
        )
        done = _read("jobs_finished")
        for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED):
            finished.add_metric([status.value], done.get(status.value, 0.0))
        yield finished
        depth = GaugeMetricFamily("jobsvc_queue_depth", "Jobs waiting in the RQ queue.")
        depth.add_metric([], get_queue().count)
        yield depth
        running = GaugeMetricFamily("jobsvc_jobs_running", "Jobs a worker runs now (RQ's started registry).")
        # ZCARD, not a COUNT over the jobs table: a scrape costs the same however many jobs there are.
        running.add_metric([], get_queue().started_job_registry.get_job_count(cleanup=False))
        yield running
        duration = HistogramMetricFamily("jobsvc_job_duration_seconds", "Time a run took, claim to end.")
        _histogram(duration, "job_duration", JOB_BUCKETS, [])
        yield duration
        latency = HistogramMetricFamily(
            "jobsvc_llm_call_seconds", "Time a pipeline step's LLM call took.", labels=["step"]
        )
        for step in ("summarize", "checklist"):
            _histogram(latency, f"llm_latency:{step}", LLM_BUCKETS, [step])
        yield latency
        errors = CounterMetricFamily("jobsvc_llm_errors", "LLM calls that failed, by kind.", labels=["kind"])
        for kind, count in sorted(_read("llm_errors").items()):
            errors.add_metric([kind], count)
        yield errors
        tokens = CounterMetricFamily("jobsvc_llm_tokens", "Tokens the provider reported.", labels=["kind"])
        for kind, count in sorted(_read("tokens").items()):
            tokens.add_metric([kind], count)
        yield tokens
