"""Many hosts, simulated on this machine: one web and three worker hosts on one Redis and one PostgreSQL.

Each host is a process group of its own, with its own instance folder and HOST_LABEL, as
separate machines (or dynos) would be; they share only Redis over TCP and PostgreSQL. One
worker host is lost with SIGKILL midway, and every job still succeeds without paying the
LLM again for work that was done.

Self-contained (its own Redis, PostgreSQL and fake LLM), so it can run beside other tests
(pytest-xdist: one group of its own).
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from redis import Redis
from rq import Worker
from rq.job import Job as RQJob

from jobsvc.core.queue import get_queue
from jobsvc.worker.recovery import reconcile
from tests.conftest import GunicornProcess, RedisProcess, WorkerProcess, free_port, fresh_app
from tests.fake_openai import FakeOpenAIServer
from tests.postgres import SKIP_REASON, running_postgres, server_binaries
from tests.support import submit, wait_for
from tests.test_wsgi import http

pytestmark = pytest.mark.xdist_group("multihost")

JOBS = 300
WORKER_HOSTS = ("host-a", "host-b", "host-c")
LOST = "host-b"


def _host_env(shared: dict[str, str], label: str, root: Path) -> dict[str, str]:
    instance = root / label
    instance.mkdir()
    return {**shared, "HOST_LABEL": label, "INSTANCE_PATH": str(instance)}


def _count(db: psycopg.Connection, sql: str, *params: object) -> int:
    return db.execute(sql, params).fetchone()[0]


@pytest.mark.skipif(server_binaries() is None, reason=SKIP_REASON)
@pytest.mark.timeout(400)
def test_three_worker_hosts_lose_one_and_every_job_succeeds_without_paying_twice(tmp_path):
    llm = FakeOpenAIServer(delay=0.2).start()
    (tmp_path / "redis").mkdir()
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    hosts: list[WorkerProcess] = []
    web = None
    with running_postgres(free_port()) as database_url:
        shared = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis.url,
            "QUEUE_NAME": "multihost",
            "LLM_PROVIDER": "openai",
            "OPENAI_API_KEY": "sk-test-multihost",
            "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_MODEL": "fake-model",
            "LLM_TIMEOUT": "10",
            "WORKER_PROCESSES": "2",
            "WORKER_CONCURRENCY": "8",
        }
        fresh_app({**shared, "INSTANCE_PATH": str(tmp_path)})  # the release phase: migrations
        db = psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
        connection = Redis.from_url(redis.url)
        try:
            for label in WORKER_HOSTS:
                env = _host_env(shared, label, tmp_path)
                hosts.append(WorkerProcess(env, tmp_path / f"{label}.log"))
            wait_for(
                lambda: (
                    {w.name.split(".")[0] for w in Worker.all(connection=connection)} >= set(WORKER_HOSTS)
                ),
                timeout=30,
                what="every worker host to listen",
            )
            web = GunicornProcess(
                {**_host_env(shared, "web", tmp_path), "WEB_CONCURRENCY": "2"}, tmp_path / "web.log"
            )
            texts = [f"Close the valve, multi-host batch {uuid.uuid4()}." for _ in range(JOBS)]
            with ThreadPoolExecutor(max_workers=16) as pool:
                answers = list(pool.map(lambda t: http("POST", f"{web.url}/jobs/", {"input_text": t}), texts))
            assert [status for status, _ in answers] == [201] * JOBS

            # Midway: a third of the jobs done, and the lost host in the middle of some.
            succeeded = "SELECT count(*) FROM jobs WHERE status = 'succeeded'"
            running_on_lost = "SELECT count(*) FROM jobs WHERE status = 'running' AND lease_owner LIKE %s"
            wait_for(
                lambda: _count(db, succeeded) >= JOBS // 3 and _count(db, running_on_lost, f"{LOST}.%"),
                timeout=120,
                interval=0.05,
                what="a third of the jobs done while the lost host runs some",
            )
            lost = hosts[WORKER_HOSTS.index(LOST)]
            lost.kill_group()
            # Its leases stay in the rows until they lapse: they name the jobs it had in flight.
            in_flight = {
                row[0]
                for row in db.execute(
                    "SELECT id FROM jobs WHERE status = 'running' AND lease_owner LIKE %s", (f"{LOST}.%",)
                )
            }

            try:
                wait_for(lambda: _count(db, succeeded) == JOBS, timeout=180, interval=0.5)
            except AssertionError:
                stuck = db.execute(
                    "SELECT id, status, lease_owner, attempts FROM jobs WHERE status <> 'succeeded'"
                ).fetchall()
                raise AssertionError(f"not every job succeeded within 180 s: {stuck}") from None
            statuses = dict(db.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())
            ids = {text: created["event_id"] for text, (_, created) in zip(texts, answers, strict=True)}
            calls = {text: len(llm.state.calls_for(text)) for text in texts}
        finally:
            if web is not None:
                web.stop()
            for host in hosts:
                host.kill_group()
            db.close()
            redis.stop()
            llm.stop()

    print(f"\n{len(in_flight)} jobs in flight on the lost host; calls per job: {sorted(set(calls.values()))}")
    assert statuses == {"succeeded": JOBS}
    assert in_flight, "the lost host had no job in flight: the test proved nothing"
    for text in texts:
        if ids[text] in in_flight:
            assert 2 <= calls[text] <= 3, (ids[text], calls[text])
        else:
            assert calls[text] == 2, (ids[text], calls[text])


def test_a_job_a_lost_host_took_off_the_queue_before_starting_it_is_queued_again(stack_env, tmp_path):
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/lost.sqlite3", "QUEUE_NAME": "lost-take"}
    app = fresh_app(env)
    client = app.test_client()
    event_id = submit(client, "Taken off the queue, then the host died.")
    with app.app_context():
        queue = get_queue()
        # What a worker's dequeue does in RQ 3.0 (BLMOVE to the queue's intermediate list);
        # then its host dies before the job is marked started: RQ still says "queued".
        assert queue.connection.lmove(queue.key, queue.intermediate_queue_key) == event_id.encode()
        assert RQJob.fetch(event_id, connection=queue.connection).get_status() == "queued"

        report = reconcile(lease_seconds=0, min_age=0)

        assert event_id in report.requeued
        assert queue.get_job_ids() == [event_id]
        assert queue.intermediate_queue.get_job_ids() == []
