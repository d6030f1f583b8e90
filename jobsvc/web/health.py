"""Health for load balancers and monitoring: liveness, readiness, and /metrics.

Readiness is about this web process: it can serve when its database answers. Redis and
the workers are reported, in the body and as gauges, never in the status code: POST
still answers 201 while Redis is away, and taking every web instance out of the load
balancer because the workers are down would turn a worker outage into a full outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import RedisError
from sqlalchemy import text

from jobsvc.core import metrics, workers
from jobsvc.core.queue import get_redis
from jobsvc.errors import Unauthorized
from jobsvc.extensions import db
from jobsvc.web import limits
from jobsvc.web.auth import bearer_token, same_secret

blp = Blueprint("health", __name__, description="Liveness and readiness, for load balancers.")


class CheckSchema(Schema):
    """One dependency's state."""

    ok = fields.Boolean(required=True)
    ms = fields.Float(required=True, metadata={"description": "How long the check took."})
    detail = fields.String(required=True)


class ReadinessSchema(Schema):
    """Whether this instance should get traffic, and the state of what it depends on."""

    status = fields.String(required=True, metadata={"description": "`ready` or `not ready`."})
    checks = fields.Dict(keys=fields.String(), values=fields.Nested(CheckSchema), required=True)


class LivenessSchema(Schema):
    """The process answers."""

    status = fields.String(required=True, metadata={"example": "ok"})


class NotOk(Exception):
    """A check that answered, with bad news its message may show (it holds no driver text)."""


def _timed(check: Callable[[], str]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail, ok = check(), True
    except NotOk as exc:
        detail, ok = str(exc), False
    except Exception as exc:  # any failure is "not ok"; only its type is shown
        # Driver messages name hosts and users: they go to no one but the log.
        detail, ok = f"does not answer ({type(exc).__name__})", False
    return {"ok": ok, "ms": round((time.perf_counter() - started) * 1000, 2), "detail": detail}


def _database() -> str:
    db.session.execute(text("SELECT 1"))
    db.session.remove()
    return "answers"


def _redis() -> str:
    get_redis().ping()
    return "answers"


def workers_alive() -> int:
    """Workers on this deployment's queue that were seen in the last three reconciler intervals."""
    config = current_app.config
    return workers.count_alive(get_redis(), config["QUEUE_NAME"], within=config["RECONCILE_INTERVAL"] * 3)


def _workers() -> str:
    count = workers_alive()
    if not count:
        seconds = current_app.config["RECONCILE_INTERVAL"] * 3
        raise NotOk(f"no worker seen in the last {seconds:g} s: jobs wait until one starts")
    return f"{count} seen recently"


EXAMPLE_READINESS = {
    "status": "ready",
    "checks": {
        "database": {"ok": True, "ms": 0.41, "detail": "answers"},
        "redis": {"ok": True, "ms": 0.23, "detail": "answers"},
        "workers": {"ok": True, "ms": 0.31, "detail": "2 seen recently"},
    },
}


@blp.route("/healthz")
class Liveness(MethodView):
    """Liveness."""

    @blp.doc(operationId="checkLiveness")
    @blp.response(200, LivenessSchema, example={"status": "ok"})
    def get(self) -> dict[str, str]:
        """The process answers; nothing else is checked."""
        return {"status": "ok"}


@blp.route("/readyz")
class Readiness(MethodView):
    """Readiness."""

    @blp.doc(operationId="checkReadiness")
    @blp.response(200, ReadinessSchema, example=EXAMPLE_READINESS)
    @blp.alt_response(503, schema=ReadinessSchema, description="This process's database does not answer.")
    def get(self) -> tuple[dict[str, Any], int]:
        """Ready when the database answers; Redis and workers are reported, not required."""
        checks = {"database": _timed(_database), "redis": _timed(_redis), "workers": _timed(_workers)}
        ready = checks["database"]["ok"]
        return {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503


class _DependencyCollector:
    """`jobsvc_redis_up` and `jobsvc_workers_alive`, read at scrape time."""

    def collect(self) -> Iterator[object]:
        try:
            alive, up = workers_alive(), 1
        except RedisError:
            alive, up = 0, 0
        redis_up = GaugeMetricFamily("jobsvc_redis_up", "1 when Redis answered this scrape, else 0.")
        redis_up.add_metric([], up)
        yield redis_up
        live = GaugeMetricFamily("jobsvc_workers_alive", "Workers seen in the last three reconciler passes.")
        live.add_metric([], alive)
        yield live
        if up:
            yield from metrics.RedisCollector().collect()


def _require_metrics_token() -> None:
    token = current_app.config["METRICS_TOKEN"]
    if not token:
        return
    # Failed tokens spend the address's AUTH_FAILURE_LIMIT, like failed API keys.
    limits.refuse_if_guessing()
    offered = bearer_token()
    if offered is None or not same_secret(offered, token):
        limits.count_failed_authentication()
        raise Unauthorized("the METRICS_TOKEN", placeholder="METRICS_TOKEN")


def init_app(app: Flask) -> None:
    """Serve /metrics in the Prometheus text format (health routes come with the blueprint)."""

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        """Prometheus text format; with METRICS_TOKEN set, only for `Authorization: Bearer <token>`."""
        _require_metrics_token()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_DependencyCollector())  # type: ignore[arg-type]
        try:
            body = generate_latest(registry)
        except RedisError as exc:
            return Response(
                f"# Redis is not reachable: {type(exc).__name__}\n", status=503, mimetype="text/plain"
            )
        return Response(body, mimetype=CONTENT_TYPE_LATEST)
