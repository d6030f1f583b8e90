"""Webhooks: POST the finished job to its callback_url, signed, retried with backoff.

The body is the job's JSON; the header `X-Jobsvc-Signature: sha256=<hex>` is
HMAC-SHA256 of the raw body with WEBHOOK_SECRET. Destinations on loopback, private,
link-local and other non-public addresses are refused unless WEBHOOK_ALLOW_PRIVATE is
set, both when the job is submitted and again before each delivery (DNS may change).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from urllib.parse import urlsplit

import httpx
from flask import current_app
from rq import Retry

from . import store
from .queue import get_queue

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Jobsvc-Signature"
DELIVERY_TIMEOUT = 10.0


class UnsafeDestination(ValueError):
    """The callback URL points somewhere jobsvc must not send requests."""


def sign(body: bytes, secret: str) -> str:
    """The signature header value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_destination(url: str, allow_private: bool) -> None:
    """Raise UnsafeDestination unless `url` is http(s) to a public address (or private is allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UnsafeDestination("callback_url must be an http or https URL with a host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)}
    except (OSError, ValueError) as exc:
        raise UnsafeDestination(f"callback_url host {parts.hostname!r} does not resolve.") from exc
    if allow_private:
        return
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise UnsafeDestination(
                f"callback_url resolves to {ip}, a loopback, private or link-local address; "
                "the server refuses those unless WEBHOOK_ALLOW_PRIVATE is set."
            )


def schedule_delivery(job_id: str) -> None:
    """Queue the first delivery attempt for a finished job that has a callback_url."""
    delays = current_app.config["WEBHOOK_RETRY_DELAYS"]
    get_queue().enqueue(
        deliver_webhook,
        job_id,
        job_id=f"webhook-{job_id}",
        retry=Retry(max=len(delays), interval=list(delays)),
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"deliver_webhook({job_id!r})",
    )


def deliver_webhook(job_id: str) -> str:
    """One delivery attempt; raises on failure so that RQ retries it after the next delay."""
    from .schemas import JobSchema

    config = current_app.config
    with current_app.app_context():
        job = store.get_job(job_id)
        if job is None or not job.callback_url or job.webhook_delivered_at is not None:
            return "nothing to deliver"
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
            last = attempt > len(config["WEBHOOK_RETRY_DELAYS"])
            store.record_webhook_attempt(job_id, error=error, given_up=last)
            log.warning("job %s webhook attempt %d failed: %s", job_id, attempt, error)
            if last:
                return "given up"
            raise
        store.record_webhook_attempt(job_id, error=None, given_up=False)
        log.info("job %s webhook delivered on attempt %d", job_id, attempt)
        return "delivered"
