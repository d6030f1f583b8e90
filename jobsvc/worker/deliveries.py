"""Webhook delivery: POST an ended job to its callback_url, signed, until delivered or given up.

The job row is the outbox: `webhook_due_at` is set when the job ends (with a callback_url)
and says when the next attempt is due. A delivery claims the due attempt (so one sender
runs at a time, and a sender that dies leaves it due again), sends the job as it is now,
and records the outcome: delivered, due again after the next WEBHOOK_RETRY_DELAYS delay,
or given up. RQ's scheduler carries the retries; the reconciler re-queues any due
delivery that Redis lost.

The body is the job's JSON; the header `X-Jobsvc-Signature: sha256=<hex>` is
HMAC-SHA256 of the raw body with WEBHOOK_SECRET. Destinations on loopback, private,
link-local and other non-public addresses are refused unless WEBHOOK_ALLOW_PRIVATE is
set, both when the job is submitted and again before each delivery (DNS may change).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import timedelta

import httpx
from flask import current_app

from jobsvc.core import store
from jobsvc.core.destinations import check_destination
from jobsvc.core.models import utcnow
from jobsvc.core.queue import enqueue_delivery
from jobsvc.core.representation import JobSchema
from jobsvc.errors import UnsafeDestination

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Jobsvc-Signature"
DELIVERY_TIMEOUT = 10.0
# How long a claimed attempt is held: past this, a sender is presumed dead and it is due again.
CLAIM_SECONDS = 60.0


def sign(body: bytes, secret: str) -> str:
    """The signature header value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver_webhook(job_id: str) -> str:
    """One delivery attempt of the job's owed webhook; what it did, as a word."""
    config = current_app.config
    with current_app.app_context():
        job = store.claim_webhook(job_id, CLAIM_SECONDS)
        if job is None or not job.callback_url:
            return "nothing due"
        body = json.dumps(JobSchema().dump(job), sort_keys=True).encode()
        attempt = job.webhook_attempts + 1
        try:
            check_destination(job.callback_url, config["WEBHOOK_ALLOW_PRIVATE"])
            response = httpx.post(
                job.callback_url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: sign(body, config["WEBHOOK_SECRET"]),
                    "X-Jobsvc-Event-Id": job.id,
                    "User-Agent": "jobsvc-webhook/1",
                },
                timeout=DELIVERY_TIMEOUT,
                follow_redirects=False,  # a redirect could lead past the destination check
            )
            if not response.is_success:
                raise httpx.HTTPStatusError(
                    f"HTTP {response.status_code}", request=response.request, response=response
                )
        except (httpx.HTTPError, UnsafeDestination) as exc:
            error = str(exc) if isinstance(exc, UnsafeDestination) else f"{type(exc).__name__}: {exc}"[:200]
            delays = config["WEBHOOK_RETRY_DELAYS"]
            delay = delays[attempt - 1] if attempt <= len(delays) else None
            next_due = utcnow() + timedelta(seconds=delay) if delay is not None else None
            store.record_webhook_attempt(job_id, job.retries, error=error, next_due=next_due)
            log.warning("job %s webhook attempt %d failed: %s", job_id, attempt, error)
            if delay is None:
                return "given up"
            enqueue_delivery(job_id, delay=delay)
            return "failed"
        store.record_webhook_attempt(job_id, job.retries, error=None, next_due=None)
        log.info("job %s webhook delivered on attempt %d", job_id, attempt)
        return "delivered"
