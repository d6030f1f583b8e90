"""Every error jobsvc raises on purpose, in one tree.

Each class says what a client or operator can do about it; the edges map the tree once:
`jobsvc.web.errors` to HTTP answers, `jobsvc.cli` to exit codes. Modules raise these and
never build HTTP answers or exit codes themselves.
"""

from __future__ import annotations


class JobsvcError(Exception):
    """Base of every deliberate jobsvc error; `str(error)` is safe to show the person who caused it."""

    #: The HTTP status the web edge answers with.
    http_status = 500
    #: The process exit code the CLI edge ends with.
    exit_code = 1
    #: Extra HTTP headers for the answer (Retry-After, WWW-Authenticate, ...).
    headers: dict[str, str] = {}  # noqa: RUF012 - read-only class default


class ConfigError(JobsvcError, ValueError):
    """A setting has a value the service cannot use; the message names the key."""

    exit_code = 2


class Unauthorized(JobsvcError):
    """The request carries no valid bearer token (an API key, or METRICS_TOKEN for /metrics)."""

    http_status = 401
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 - read-only class default

    def __init__(self, what: str = "a valid API key", placeholder: str = "key") -> None:
        super().__init__(f"Send {what} as the header Authorization: Bearer <{placeholder}>.")


class JobNotFound(JobsvcError):
    """No job has this id (or the caller may not see it)."""

    http_status = 404


class WrongStatus(JobsvcError):
    """The job's status does not allow what was asked."""

    http_status = 409

    def __init__(self, job_id: str, status: str, action: str) -> None:
        super().__init__(f"Job {job_id} has already {status}; there is nothing to {action}.")
        self.job_id, self.status, self.action = job_id, status, action


class IdempotencyConflict(JobsvcError):
    """An Idempotency-Key came back with a different request body."""

    http_status = 409

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was first used with a different body (job {job_id}); "
            "use a new key for a new document."
        )
        self.key, self.job_id = key, job_id


class Overloaded(JobsvcError):
    """More jobs wait than MAX_PENDING_JOBS allows."""

    http_status = 429
    #: Long enough for workers to make progress.
    retry_after = 10

    def __init__(self, pending: int) -> None:
        super().__init__(
            f"{pending} jobs are waiting, the most this service queues; "
            f"try again in {self.retry_after} seconds."
        )
        self.pending = pending
        self.headers = {"Retry-After": str(self.retry_after)}


class UnsafeDestination(JobsvcError, ValueError):
    """A callback URL points somewhere jobsvc must not send requests."""

    http_status = 422


class DatabaseUnavailable(JobsvcError):
    """The database did not accept a connection (down, refusing, or every pooled connection busy)."""

    http_status = 503
    headers = {"Retry-After": "5"}  # noqa: RUF012 - read-only class default

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(
            f"The database at {where} did not accept a connection ({reason}); nothing was changed. "
            "Try again shortly; operators: check DATABASE_URL and that the database runs (/readyz)."
        )


class SchemaOutOfDate(JobsvcError):
    """The database answers, but without the tables this release needs: a migration was not run."""

    http_status = 503
    headers = {"Retry-After": "30"}  # noqa: RUF012 - read-only class default

    def __init__(self) -> None:
        super().__init__(
            "The service is not ready: its database schema is out of date. Operators: run "
            "`flask --app wsgi db upgrade` (the Procfile's release phase)."
        )


class QueueUnavailable(JobsvcError):
    """Redis did not answer, so nothing could be queued or looked up there."""

    http_status = 503
    headers = {"Retry-After": "5"}  # noqa: RUF012 - read-only class default

    def __init__(self, error: Exception) -> None:
        super().__init__(
            f"Redis did not answer ({type(error).__name__}); nothing was queued. Check REDIS_URL and "
            "that Redis runs, then try again."
        )
