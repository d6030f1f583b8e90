"""One RQ worker per process feeds its pool of slot threads (written against RQ 3.0.0).

Real processes: a worker with a Redis server, database and queue of its own, the fake LLM.
"""

from __future__ import annotations

import re
import uuid

import pytest
import rq
from redis import Redis
from rq import Queue, Worker

from jobsvc.worker.runner import PoolWorker
from tests.conftest import RedisProcess, fresh_app
from tests.support import submit, wait_for, wait_for_job


@pytest.fixture
def pool_env(stack_env, tmp_path):
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisProcess(folder)
    server.start()
    env = {
        **stack_env,
        "REDIS_URL": server.url,
        "DATABASE_URL": f"sqlite:///{tmp_path}/pool.sqlite3",
        "QUEUE_NAME": f"pool-{uuid.uuid4().hex[:8]}",
        "WORKER_CONCURRENCY": "4",
        "WORKER_PROCESSES": "1",
        "WEBHOOK_CONCURRENCY": "1",
    }
    yield env
    server.stop()


def test_rq_version_the_pool_is_written_against():
    # PoolWorker runs several executions under one RQ Worker: RQ 3.0.0 keeps a dict of them.
    assert rq.__version__ == "3.0.0"


def test_one_rq_worker_feeds_all_slots_of_a_process_and_keeps_rqs_registries(
    pool_env, start_worker, fake_llm
):
    client = fresh_app(pool_env).test_client()
    worker = start_worker(**pool_env)
    connection = Redis.from_url(pool_env["REDIS_URL"])
    queue = Queue(pool_env["QUEUE_NAME"], connection=connection)

    names = [w.name for w in Worker.all(queue=queue, connection=connection)]
    assert len(names) == 1 and re.fullmatch(rf"[^.]+\.{worker.pid}\.x4\.[0-9a-f]{{6}}", names[0]), names

    fake_llm.state.delay = 2.0
    ids = [submit(client, f"Wear gloves {uuid.uuid4()}.") for _ in range(5)]
    wait_for(lambda: len(queue.started_job_registry.get_job_ids()) == 4, what="four jobs started at once")
    assert queue.count == 1  # the fifth waits in Redis, for whichever worker has a free slot first

    assert [wait_for_job(client, event_id)["status"] for event_id in ids] == ["succeeded"] * 5
    wait_for(lambda: set(queue.finished_job_registry.get_job_ids()) == set(ids), what="RQ to record them")
    assert queue.started_job_registry.get_job_ids() == []
    worker.stop()


def test_an_rq_worker_sends_at_most_one_heartbeat_in_half_a_second_however_many_jobs_it_hands_over(
    pool_env, app
):
    connection = Redis.from_url(pool_env["REDIS_URL"])
    worker = PoolWorker(
        [Queue(pool_env["QUEUE_NAME"], connection=connection)], app=app, slots=2, connection=connection
    )

    def expires() -> int:
        return connection.info("commandstats").get("cmdstat_expire", {}).get("calls", 0)

    before = expires()
    for _ in range(10):  # RQ's loop sends three per job it hands over
        worker.heartbeat()

    assert expires() - before == 2  # one heartbeat: the worker's key and its executions' set
