"""Webhook delivery: POST an ended job to its callback_url, signed, until delivered or given up.

The job row is the outbox: `webhook_due_at` is set when the job ends (with a callback_url)
and says when the next attempt is due. A delivery claims the due attempt (so one sender
runs at a time, and a sender that dies leaves it due again once the claim runs out), sends
the job as it is now, and records the outcome: delivered, due again after the next
WEBHOOK_RETRY_DELAYS delay, or given up. The reconciler queues every delivery that is
due and not queued: retries, and whatever Redis lost. Delivery is at least once: a
sender killed mid-attempt means the receiver may see that attempt again, with the same
`webhook-id`.

Messages follow Standard Webhooks (standardwebhooks.com): the body is the job's JSON;
`webhook-id` is `msg_<job id>_<retries>` (one per outcome, the same on every retry of
it), `webhook-timestamp` the attempt's unix time, and `webhook-signature` is
`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per WEBHOOK_SECRET, space-separated.

An attempt is bounded: the destination is checked again (DNS may have changed) and the
connection goes to the very address that check vetted; the whole attempt (lookup,
connect, TLS, sending, reading the answer) ends by WEBHOOK_TIMEOUT seconds of wall
clock, and at most 64 KiB of the answer is read. The job records only "no successful
answer" or the HTTP status, never why a connection failed (that would be a port scanner).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import math
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpcore
import httpx
from flask import current_app

from jobsvc.core import store
from jobsvc.core.destinations import Destination, check_destination
from jobsvc.core.models import utcnow
from jobsvc.core.representation import JobSchema
from jobsvc.core.signing import secret_key
from jobsvc.errors import UnsafeDestination

log = logging.getLogger(__name__)

#: The most of a receiver's answer an attempt reads, status line and headers included.
MAX_ANSWER_BYTES = 64 * 1024
#: A claim outlives its attempt's WEBHOOK_TIMEOUT by this much (database writes); past it a
#: sender is presumed dead and the delivery is due again.
CLAIM_MARGIN_SECONDS = 10.0
#: What a failed attempt records when no HTTP answer came: the same for every network failure.
NO_ANSWER = "could not deliver: no successful answer"
USER_AGENT = "jobsvc-webhook/2"


def message_id(job_id: str, retries: int) -> str:
    """The `webhook-id` of the message for the job's outcome number `retries`."""
    return f"msg_{job_id}_{retries}"


def sign(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256>` per secret, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    )


def deliver_webhook(job_id: str) -> str:
    """One delivery attempt of the job's owed webhook; what it did, as a word."""
    config = current_app.config
    with current_app.app_context():
        timeout = config["WEBHOOK_TIMEOUT"]
        job = store.claim_webhook(job_id, timeout + CLAIM_MARGIN_SECONDS)
        if job is None or not job.callback_url:
            return "nothing due"
        body = json.dumps(JobSchema().dump(job), sort_keys=True).encode()
        msg_id = message_id(job.id, job.retries)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(config["WEBHOOK_SECRET"], msg_id, timestamp, body),
        }
        attempt = job.webhook_attempts + 1
        error = _attempt(job.id, job.callback_url, body, headers, config["WEBHOOK_ALLOW_PRIVATE"], timeout)
        if error is None:
            store.record_webhook_attempt(job_id, job.retries, error=None, next_due=None)
            log.info("job %s webhook %s delivered on attempt %d", job_id, msg_id, attempt)
            return "delivered"
        delays = config["WEBHOOK_RETRY_DELAYS"]
        delay = delays[attempt - 1] if attempt <= len(delays) else None
        next_due = utcnow() + timedelta(seconds=delay) if delay is not None else None
        store.record_webhook_attempt(job_id, job.retries, error=error, next_due=next_due)
        log.warning("job %s webhook attempt %d failed: %s", job_id, attempt, error)
        # The retry is not queued from here: RQ deletes a finished job of result_ttl=0 by its
        # id, which would take a retry queued under that same id with it. The row says when
        # it is due, and the reconciler queues it then.
        return "given up" if delay is None else "failed"


def _attempt(
    job_id: str, url: str, body: bytes, headers: dict[str, str], allow_private: bool, timeout: float
) -> str | None:
    """Send once; None when the receiver answered 2xx, else the reason to record.

    The log says what went wrong on the network; the recorded reason does not.
    """
    deadline = time.monotonic() + timeout
    try:
        destination = check_destination(url, allow_private, timeout=timeout)
        answer = send(destination, body, headers, deadline)
    except UnsafeDestination as exc:
        return f"could not deliver: {exc}"
    except _NETWORK_ERRORS as exc:
        log.info("job %s webhook: %s: %s", job_id, type(exc).__name__, exc)
        return NO_ANSWER
    if not 200 <= answer.status < 300:
        return f"{NO_ANSWER} (HTTP {answer.status})"
    return None


@dataclass(frozen=True)
class Answer:
    """What a receiver answered, and how many bytes of it were read."""

    status: int
    bytes_read: int


def send(
    destination: Destination,
    body: bytes,
    headers: dict[str, str],
    deadline: float,
    ssl_context: ssl.SSLContext | None = None,
) -> Answer:
    """POST `body` to the vetted destination, ending by `deadline` (time.monotonic()).

    No proxy from the environment, no redirect, no second lookup of the name: the socket
    goes to `destination.address`, while the URL's host still names the server in the
    Host header, the TLS server name and the certificate check (against `ssl_context`,
    by default the certifi roots).
    """
    backend = _PinnedBackend(destination.address, deadline)
    left = max(deadline - time.monotonic(), 0.001)
    if ssl_context is None:
        ssl_context = _default_ssl_context()
    with (
        httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=backend, retries=0) as pool,
        pool.stream(
            "POST",
            destination.url,
            headers=headers,
            content=body,
            extensions={"timeout": dict.fromkeys(("connect", "read", "write", "pool"), left)},
        ) as response,
    ):
        try:
            for _ in response.iter_stream():
                pass
        except _AnswerTooLong:
            pass  # the status is all that counts; the rest of the answer is not read
        return Answer(status=response.status, bytes_read=backend.bytes_read)


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """The certifi roots, without SSL_CERT_FILE and friends from the environment; one per process."""
    return httpx.create_ssl_context(trust_env=False)


class _AnswerTooLong(Exception):
    """The receiver's answer is longer than MAX_ANSWER_BYTES."""


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to one vetted address whatever host is asked for; every socket operation ends
    by the deadline, and at most MAX_ANSWER_BYTES are read in all."""

    def __init__(self, address: str, deadline: float) -> None:
        self.address = address
        self.deadline = deadline
        self.bytes_read = 0
        self._inner = httpcore.SyncBackend()

    def left(self, timeout: float | None, error: type[Exception]) -> float:
        """Seconds this operation may take: its own timeout, cut to what is left of the attempt."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise error("webhook attempt deadline reached")
        return min(timeout if timeout is not None else math.inf, remaining)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            self.address,
            port,
            timeout=self.left(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream, self)

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks go over TCP only")

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, max(self.deadline - time.monotonic(), 0)))


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose reads and writes end by the backend's deadline and read budget."""

    def __init__(self, inner: httpcore.NetworkStream, backend: _PinnedBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        budget = MAX_ANSWER_BYTES - self._backend.bytes_read
        if budget <= 0:
            raise _AnswerTooLong()
        data = self._inner.read(min(max_bytes, budget), self._backend.left(timeout, httpcore.ReadTimeout))
        self._backend.bytes_read += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None):
        left = self._backend.left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, left), self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


# Whatever can go wrong between jobsvc and a receiver; all are recorded alike (NO_ANSWER).
_NETWORK_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    _AnswerTooLong,
    OSError,
)
