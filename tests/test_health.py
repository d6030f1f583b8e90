"""Liveness and readiness, as a load balancer sees them."""

from __future__ import annotations

from tests.conftest import RedisProcess, fresh_app
from tests.support import wait_for


def test_liveness_answers_whatever_else_is_down(stack_env, tmp_path):
    app = fresh_app(
        {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/l.sqlite3", "REDIS_URL": "redis://127.0.0.1:9"}
    )
    response = app.test_client().get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_ready_when_database_redis_and_a_worker_answer(e2e_client, worker):
    response = wait_for(lambda: (r := e2e_client.get("/readyz")).status_code == 200 and r, what="readiness")

    body = response.get_json()
    assert body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "redis": True,
        "workers": True,
    }


def test_not_ready_without_a_worker_on_the_queue(stack_env, tmp_path):
    app = fresh_app(
        {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/n.sqlite3", "QUEUE_NAME": "no-workers"}
    )
    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json()["checks"]["workers"]["ok"] is False
    assert "no worker" in response.get_json()["checks"]["workers"]["detail"]


def test_readiness_follows_redis_going_down_and_coming_back(stack_env, start_worker, tmp_path_factory):
    redis = RedisProcess(tmp_path_factory.mktemp("ready-redis"))
    redis.start()
    folder = tmp_path_factory.mktemp("ready-db")
    env = {
        **stack_env,
        "REDIS_URL": redis.url,
        "DATABASE_URL": f"sqlite:///{folder}/r.sqlite3",
        "QUEUE_NAME": "ready",
    }
    client = fresh_app(env).test_client()
    worker = start_worker(**env)
    try:
        wait_for(lambda: client.get("/readyz").status_code == 200, what="ready")

        redis.stop()
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.get_json()["checks"]["redis"]["ok"] is False
        assert down.get_json()["checks"]["database"]["ok"] is True

        redis.start()
        wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30, what="ready again")
    finally:
        try:
            worker.stop()
        finally:
            redis.stop()
