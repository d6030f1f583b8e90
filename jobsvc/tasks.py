"""The RQ job function: takes an event id, loads the job, runs the pipeline with checkpoints."""

from __future__ import annotations

import logging
import time

from flask import current_app
from rq.timeouts import JobTimeoutException

from . import pipeline, store
from .llm import LLMError, get_provider

log = logging.getLogger(__name__)


def run_job(job_id: str) -> str:
    """Run the pipeline for one job; safe to run twice. Returns the job's final status."""
    with current_app.app_context():  # a fresh context (and session) per job
        job = store.claim_job(job_id)
        if job is None:
            log.info("job %s skipped: missing or already finished", job_id)
            return "skipped"
        log.info("job %s status=running attempt=%d", job_id, job.attempts)
        started = time.monotonic()
        try:
            provider = get_provider()
            summary = job.summary
            if summary is None:
                summary = pipeline.summarize(provider, job.input_text).text
                store.save_summary(job_id, summary, provider.name, provider.model)
            checklist = pipeline.make_checklist(provider, summary).text
            store.complete_job(job_id, checklist)
        except LLMError as exc:
            log.warning("job %s status=failed attempt=%d error=%s", job_id, job.attempts, exc)
            store.fail_job(job_id, str(exc))
            return "failed"
        except JobTimeoutException:
            timeout = current_app.config["JOB_TIMEOUT"]
            store.fail_job(job_id, f"The job ran longer than JOB_TIMEOUT={timeout}s and was stopped.")
            raise
        except Exception:
            # A bug: keep the details in the worker log, give the user a reference.
            log.exception("job %s crashed", job_id)
            store.fail_job(job_id, "Internal error while processing the job; see the worker log.")
            raise
        log.info(
            "job %s status=succeeded attempt=%d duration=%.3fs",
            job_id,
            job.attempts,
            time.monotonic() - started,
        )
        return "succeeded"
