"""Liveness, readiness and /metrics, as a load balancer and a scraper see them.

Readiness is about this web process: it is ready when its database answers. Redis and
the workers are reported in the body and as gauges, never in the status code.
"""

from __future__ import annotations

import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from sqlalchemy import event

from jobsvc import create_app
from jobsvc.extensions import db
from tests.conftest import RedisProcess, free_port, fresh_app, settings_from
from tests.support import wait_for


def gauges(client, **kwargs) -> dict[str, float]:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.data
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
        if not sample.labels
    }


def checks(response) -> dict[str, bool]:
    return {name: check["ok"] for name, check in response.get_json()["checks"].items()}


@pytest.fixture
def lonely_app(stack_env, tmp_path):
    """An app whose queue no worker listens on."""
    env = {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/n.sqlite3",
        "QUEUE_NAME": f"lonely-{uuid.uuid4()}",
    }
    return fresh_app(env)


def redis_down_app(stack_env, tmp_path, redis_url: str | None = None):
    url = redis_url or f"redis://127.0.0.1:{free_port()}/0"
    return fresh_app({**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/rd.sqlite3", "REDIS_URL": url})


def test_liveness_answers_whatever_else_is_down(stack_env, tmp_path):
    app = fresh_app(
        {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/l.sqlite3", "REDIS_URL": "redis://127.0.0.1:9"}
    )
    response = app.test_client().get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_ready_with_database_redis_and_a_worker_and_the_gauges_say_so(e2e_client, worker):
    response = wait_for(lambda: (r := e2e_client.get("/readyz")).get_json()["checks"]["workers"]["ok"] and r)

    assert response.status_code == 200 and response.get_json()["status"] == "ready"
    assert checks(response) == {"database": True, "redis": True, "workers": True}
    metrics = gauges(e2e_client)
    assert metrics["jobsvc_redis_up"] == 1
    assert metrics["jobsvc_workers_alive"] >= 1


def test_ready_with_no_worker_alive_and_the_body_and_gauge_say_so(lonely_app):
    client = lonely_app.test_client()
    response = client.get("/readyz")

    assert response.status_code == 200
    assert checks(response) == {"database": True, "redis": True, "workers": False}
    assert "no worker" in response.get_json()["checks"]["workers"]["detail"]
    assert gauges(client)["jobsvc_workers_alive"] == 0


def test_ready_with_redis_down_and_the_body_and_gauge_say_so(stack_env, tmp_path):
    client = redis_down_app(stack_env, tmp_path).test_client()
    response = client.get("/readyz")

    assert response.status_code == 200
    assert checks(response) == {"database": True, "redis": False, "workers": False}
    metrics = gauges(client)
    assert (metrics["jobsvc_redis_up"], metrics["jobsvc_workers_alive"]) == (0, 0)
    # What readiness protects: the API still takes jobs.
    assert client.post("/jobs/", json={"input_text": "Wear gloves."}).status_code == 201


def test_readiness_stays_200_while_redis_goes_down_and_comes_back(stack_env, tmp_path_factory):
    redis = RedisProcess(tmp_path_factory.mktemp("ready-redis"))
    redis.start()
    folder = tmp_path_factory.mktemp("ready-db")
    env = {**stack_env, "REDIS_URL": redis.url, "DATABASE_URL": f"sqlite:///{folder}/r.sqlite3"}
    client = fresh_app(env).test_client()
    try:
        assert checks(client.get("/readyz"))["redis"] is True
        redis.stop()
        down = client.get("/readyz")
        assert down.status_code == 200 and checks(down)["redis"] is False
        redis.start()
        wait_for(lambda: checks(client.get("/readyz"))["redis"], what="Redis reported back")
        assert client.get("/readyz").status_code == 200
    finally:
        redis.stop()


def test_no_driver_text_in_the_body_redis_down_or_database_down(stack_env, tmp_path):
    port = free_port()
    redis_app = redis_down_app(stack_env, tmp_path, f"redis://sneaky-user:pw@127.0.0.1:{port}/0")
    database_app = create_app(
        {
            **settings_from(stack_env),
            "DATABASE_URL": f"postgresql://sneaky-user:pw@127.0.0.1:{port}/secret-db",
        }
    )

    redis_down = redis_app.test_client().get("/readyz")
    database_down = database_app.test_client().get("/readyz")

    assert redis_down.status_code == 200
    assert database_down.status_code == 503 and checks(database_down)["database"] is False
    for response in (redis_down, database_down):
        text = response.get_data(as_text=True)
        assert not any(secret in text for secret in ("sneaky-user", "127.0.0.1", str(port), "secret-db"))


def commands_called(redis: Redis) -> dict[str, int]:
    return {name: stats["calls"] for name, stats in redis.info("commandstats").items()}


def test_readiness_and_a_scrape_do_no_work_that_grows_with_the_keyspace(e2e_app, worker):
    redis = Redis.from_url(e2e_app.config["REDIS_URL"])
    client = e2e_app.test_client()
    before = commands_called(redis)

    client.get("/readyz")
    client.get("/metrics")

    after = commands_called(redis)
    for command in ("cmdstat_scan", "cmdstat_keys"):
        assert after.get(command, 0) == before.get(command, 0), command
    assert after["cmdstat_zcount"] > before.get("cmdstat_zcount", 0)  # the heartbeats' sorted set


def test_a_scrape_does_not_read_the_jobs_table(e2e_app):
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    with e2e_app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = e2e_app.test_client().get("/metrics")
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert response.status_code == 200
    assert "jobsvc_jobs_running" in response.get_data(as_text=True)
    assert not [statement for statement in statements if "jobs" in statement.lower()]


@pytest.fixture
def guarded_metrics(stack_env, tmp_path):
    env = {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/mt.sqlite3",
        # A failed-authentication budget of its own: AUTH_FAILURE_LIMIT counts per queue name.
        "QUEUE_NAME": f"metrics-{uuid.uuid4()}",
        "METRICS_TOKEN": "scrape-me",
    }
    return fresh_app(env).test_client()


@pytest.mark.parametrize("header", [None, "Bearer wrong", "scrape-me", "Basic scrape-me"])
def test_with_a_metrics_token_a_scrape_without_it_is_401(guarded_metrics, header):
    response = guarded_metrics.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert "METRICS_TOKEN" in response.get_json()["message"]
    assert "jobsvc_" not in response.get_data(as_text=True)


def test_with_a_metrics_token_a_scrape_with_it_gets_the_metrics(guarded_metrics):
    metrics = gauges(guarded_metrics, headers={"Authorization": "Bearer scrape-me"})
    assert metrics["jobsvc_redis_up"] == 1


def test_metrics_token_guesses_get_auth_failure_limit_then_429_even_the_right_one(stack_env, tmp_path):
    env = {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/mg.sqlite3",
        "QUEUE_NAME": f"metrics-{uuid.uuid4()}",  # a failure budget of its own
        "METRICS_TOKEN": "scrape-me",
        "AUTH_FAILURE_LIMIT": "3/minute",
    }
    client = fresh_app(env).test_client()
    guesses = [
        client.get("/metrics", headers={"Authorization": f"Bearer guess-{n}"}).status_code for n in range(3)
    ]

    right = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    from_elsewhere = client.get(
        "/metrics",
        headers={"Authorization": "Bearer scrape-me"},
        environ_base={"REMOTE_ADDR": "198.51.100.4"},
    )

    assert guesses == [401, 401, 401]
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
    assert from_elsewhere.status_code == 200
