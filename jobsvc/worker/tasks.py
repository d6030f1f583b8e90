"""The RQ job function: takes an event id, loads the job, runs the pipeline with checkpoints."""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager

from flask import Flask, current_app
from redis.exceptions import RedisError
from rq.timeouts import JobTimeoutException

from jobsvc.core import metrics, store, workers
from jobsvc.core.models import Job, JobStatus
from jobsvc.core.queue import enqueue_job
from jobsvc.core.service import announce_end
from jobsvc.llm import LLMError, Usage, get_provider, pipeline
from jobsvc.llm.prompts import PROMPT_VERSION
from jobsvc.worker import leases

log = logging.getLogger(__name__)


def _lease_heartbeat(app: Flask, job_id: str, owner: str) -> AbstractContextManager[None]:
    """Renew the job's lease in the background until the block ends (or the process dies).

    One thread per process renews every lease its runs hold (jobsvc/worker/leases.py).
    """
    return leases.keeper.holding(app, job_id, owner)


def hand_back_runs() -> list[str]:
    """Give every run in progress in this process back at once; returns the job ids handed back.

    Each job's lease is released (the job is pending again, its checkpoints kept) and it is
    re-enqueued, so another worker resumes it now instead of when the lease would lapse.
    The runs themselves go on until the process ends, but every write they try is refused.
    """
    handed = []
    # The runs whose lease this process keeps: a run that lost its lease is no longer ours.
    for job_id, owner in leases.keeper.held().items():
        if not store.hand_back_job(job_id, owner):
            continue  # it ended (or was canceled) meanwhile
        handed.append(job_id)
        try:
            enqueue_job(job_id, replace=True)
        except RedisError as exc:
            # The row says pending: the reconciler of any live worker queues it.
            log.warning("job %s handed back, not re-enqueued yet: %s", job_id, type(exc).__name__)
    return handed


def _chunk_checkpoint(job_id: str, owner: str) -> pipeline.Checkpoint:
    """Keep each chunk summary of a long document as it arrives; False once the job is not ours."""

    def keep(key: str, summary: str, usage: Usage) -> bool:
        metrics.tokens_used(usage)
        return store.save_chunk_summary(job_id, owner, key, summary, usage)

    return keep


def run_job(job_id: str) -> str:
    """Run the pipeline for one job; safe to run twice. Returns what this run did."""
    with metrics.batched():
        outcome, callback_url = _run(job_id)
    if outcome in {"succeeded", "failed"}:
        announce_end(job_id, callback_url)
    return outcome


def _run(job_id: str) -> tuple[str, str | None]:
    """What this run did, and the job's callback_url (known from the claim, not read again)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    with app.app_context():  # a fresh context (and session) per job
        owner = workers.lease_owner(app.config)  # names the host: who holds which job
        job = store.claim_job(job_id, owner, app.config["LEASE_SECONDS"])
        if job is None:
            log.info("job %s skipped: missing, finished, or running elsewhere", job_id)
            return "skipped", None
        if job.run_attempts > app.config["MAX_ATTEMPTS"]:
            message = (
                f"Gave up after {app.config['MAX_ATTEMPTS']} attempts: the worker running this job "
                "stopped each time (killed, crashed or out of memory)."
            )
            return _fail(job, owner, message, started=None), job.callback_url
        log.info("job %s status=running attempt=%d", job_id, job.attempts)
        started = time.monotonic()
        with _lease_heartbeat(app, job_id, owner):
            try:
                provider = get_provider()
                options = pipeline.Options.from_config(app.config)
                summary = job.summary
                # The job's warnings so far: a resumed run's come from its row, step 1's from step 1.
                warnings = list(job.warnings or [])
                if summary is None:
                    with metrics.llm_call("summarize"):
                        step_one = pipeline.summarize(
                            provider,
                            job.input_text,
                            options,
                            done=store.chunk_summaries(job),
                            checkpoint=_chunk_checkpoint(job_id, owner),
                        )
                    model = (provider.name, provider.model)
                    # Refused when the job was canceled (or lost its lease) meanwhile: stop paying.
                    if step_one is not None:
                        metrics.tokens_used(step_one.usage)
                    if step_one is not None and store.save_summary(
                        job_id, owner, step_one.text, *model, step_one.usage, step_one.warnings
                    ):
                        summary, warnings = step_one.text, list(step_one.warnings)
                finished = False
                if summary is not None:
                    with metrics.llm_call("checklist"):
                        step_two = pipeline.make_checklist(provider, summary, options, job.input_text)
                    finished = store.complete_job(
                        job_id,
                        owner,
                        step_two.text,
                        step_two.usage,
                        items=step_two.items,
                        source=step_two.source,
                        prompt_version=PROMPT_VERSION,
                        grounding=step_two.grounding,
                        warnings=[*warnings, *step_two.warnings],
                    )
                    metrics.tokens_used(step_two.usage)
            except LLMError as exc:
                return _fail(job, owner, str(exc), started), job.callback_url
            except JobTimeoutException:
                message = f"The job ran longer than JOB_TIMEOUT={app.config['JOB_TIMEOUT']}s and was stopped."
                if _fail(job, owner, message, started) == "failed":
                    announce_end(job_id, job.callback_url)
                raise
            except Exception:
                # A bug: keep the details in the worker log, give the user a reference.
                log.exception("job %s crashed", job_id)
                message = "Internal error while processing the job; see the worker log."
                if _fail(job, owner, message, started) == "failed":
                    announce_end(job_id, job.callback_url)
                raise
        if not finished:
            _say_lost(job_id)
            return "lost", job.callback_url
        metrics.job_finished(JobStatus.SUCCEEDED, time.monotonic() - started)
        log.info(
            "job %s status=succeeded attempt=%d duration=%.3fs",
            job_id,
            job.attempts,
            time.monotonic() - started,
        )
        return "succeeded", job.callback_url


def _fail(job: Job, owner: str, message: str, started: float | None) -> str:
    """Fail the job if this run still holds it: "failed", or "lost" when it was canceled or
    another run took its lease meanwhile (then nothing is logged as failed, counted or owed)."""
    if not store.fail_job(job.id, message, owner):
        _say_lost(job.id)
        return "lost"
    seconds = None if started is None else time.monotonic() - started
    metrics.job_finished(JobStatus.FAILED, seconds)
    took = "" if seconds is None else f" duration={seconds:.3f}s"
    log.warning("job %s status=failed attempt=%d%s error=%s", job.id, job.attempts, took, message)
    return "failed"


def _say_lost(job_id: str) -> None:
    log.warning("job %s run ended early: it was canceled, or another run took its lease", job_id)
