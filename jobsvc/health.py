"""Health checks for load balancers and orchestrators: liveness and readiness."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from .extensions import db
from .queue import get_redis

blp = Blueprint("health", __name__, description="Liveness and readiness, for load balancers.")


def heartbeat_key(queue_name: str, worker: str) -> str:
    """The Redis key a live worker refreshes every reconciler pass."""
    return f"jobsvc:{queue_name}:heartbeat:{worker}"


class CheckSchema(Schema):
    """One dependency's state."""

    ok = fields.Boolean(required=True)
    ms = fields.Float(required=True, metadata={"description": "How long the check took."})
    detail = fields.String(required=True)


class ReadinessSchema(Schema):
    """Whether this instance should get traffic, and why."""

    status = fields.String(required=True, metadata={"description": "`ready` or `not ready`."})
    checks = fields.Dict(keys=fields.String(), values=fields.Nested(CheckSchema), required=True)


class LivenessSchema(Schema):
    """The process answers."""

    status = fields.String(required=True, metadata={"example": "ok"})


def _timed(check: Callable[[], str]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as exc:  # any failure means "not ready"; the type says which
        detail, ok = f"{type(exc).__name__}: {str(exc)[:120]}", False
    return {"ok": ok, "ms": round((time.perf_counter() - started) * 1000, 2), "detail": detail}


def _database() -> str:
    db.session.execute(text("SELECT 1"))
    db.session.remove()
    return "answers"


def _redis() -> str:
    get_redis().ping()
    return "answers"


def _workers() -> str:
    pattern = heartbeat_key(current_app.config["QUEUE_NAME"], "*")
    count = sum(1 for _ in get_redis().scan_iter(match=pattern, count=100))
    if not count:
        raise RuntimeError(f"no worker on queue {current_app.config['QUEUE_NAME']!r} was seen recently")
    return f"{count} seen recently"


@blp.route("/healthz")
class Liveness(MethodView):
    """Liveness."""

    @blp.response(200, LivenessSchema)
    def get(self) -> dict[str, str]:
        """The process answers; nothing else is checked."""
        return {"status": "ok"}


@blp.route("/readyz")
class Readiness(MethodView):
    """Readiness."""

    @blp.response(200, ReadinessSchema)
    @blp.alt_response(503, schema=ReadinessSchema, description="A dependency does not answer.")
    def get(self) -> tuple[dict[str, Any], int]:
        """The database and Redis answer, and a worker's heartbeat was seen recently."""
        checks = {"database": _timed(_database), "redis": _timed(_redis), "workers": _timed(_workers)}
        ready = all(check["ok"] for check in checks.values())
        return {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503
