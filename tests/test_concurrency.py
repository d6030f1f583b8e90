"""Concurrency: 200 POSTs through gunicorn beside two workers; 20 retries of one POST at the same moment."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from jobsvc.core.models import Job, JobStatus
from jobsvc.extensions import db
from tests.conftest import GunicornProcess, free_port, fresh_app
from tests.postgres import running_postgres, server_binaries
from tests.support import wait_for
from tests.test_wsgi import http

JOBS = 200


@pytest.fixture
def load_env(stack_env, tmp_path):
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/load.sqlite3", "QUEUE_NAME": "load"}
    app = fresh_app(env)
    return env, app


def test_200_concurrent_posts_all_accepted_all_succeed_two_llm_calls_each(
    load_env, start_worker, tmp_path, fake_llm
):
    env, app = load_env
    workers = [start_worker(**env), start_worker(**env)]
    web = GunicornProcess({**env, "WEB_CONCURRENCY": "2"}, tmp_path / "gunicorn.log")
    texts = [f"Check the fire exits, batch {uuid.uuid4()}." for _ in range(JOBS)]
    try:
        with ThreadPoolExecutor(max_workers=64) as pool:
            answers = list(
                pool.map(lambda text: http("POST", f"{web.url}/jobs/", {"input_text": text}), texts)
            )

        def counts() -> dict[JobStatus, int]:
            with app.app_context():
                rows = db.session.execute(select(Job.status, func.count()).group_by(Job.status))
                return dict(rows.all())

        wait_for(
            lambda: counts().get(JobStatus.SUCCEEDED, 0) + counts().get(JobStatus.FAILED, 0) == JOBS,
            timeout=120,
            interval=0.2,
            what="every job to finish",
        )
        final = counts()
    finally:
        web.stop()
        for worker in workers:
            worker.stop()

    assert [status for status, _ in answers] == [201] * JOBS
    assert final == {JobStatus.SUCCEEDED: JOBS}
    assert all(len(fake_llm.state.calls_for(text)) == 2 for text in texts)
    logs = web.log() + "".join(worker.log() for worker in workers)
    assert "database is locked" not in logs


CONCURRENT_RETRIES = 20


def post_at_once(app, body: dict, headers: dict) -> list[tuple[int, str | None]]:
    """CONCURRENT_RETRIES threads POST the same request at the same moment; their statuses and event ids."""
    barrier = threading.Barrier(CONCURRENT_RETRIES)

    def one(_: int) -> tuple[int, str | None]:
        client = app.test_client()
        barrier.wait()
        response = client.post("/jobs/", json=body, headers=headers)
        return response.status_code, (response.get_json() or {}).get("event_id")

    with ThreadPoolExecutor(max_workers=CONCURRENT_RETRIES) as pool:
        return list(pool.map(one, range(CONCURRENT_RETRIES)))


def assert_one_job_for_the_key(app, answers, key: str) -> None:
    assert all(status in (200, 201) for status, _ in answers), answers
    assert len({event_id for _, event_id in answers}) == 1, answers
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(Job.idempotency_key == key)) == 1


def test_20_concurrent_posts_with_one_idempotency_key_make_one_job_on_sqlite(stack_env, tmp_path):
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/idem.sqlite3", "QUEUE_NAME": "idem"}
    app = fresh_app(env)
    key = f"order-{uuid.uuid4()}"

    answers = post_at_once(app, {"input_text": "Wear gloves."}, {"Idempotency-Key": key})

    assert_one_job_for_the_key(app, answers, key)


@pytest.mark.skipif(
    server_binaries() is None,
    reason="PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql",
)
def test_20_concurrent_posts_with_one_idempotency_key_make_one_job_on_postgres(stack_env):
    with running_postgres(free_port()) as url:
        app = fresh_app({**stack_env, "DATABASE_URL": url, "QUEUE_NAME": "idem-pg"})
        for _ in range(3):  # three rounds: a race that a lucky schedule avoids once is met again
            key = f"order-{uuid.uuid4()}"
            answers = post_at_once(app, {"input_text": "Wear gloves."}, {"Idempotency-Key": key})
            assert_one_job_for_the_key(app, answers, key)
        with app.app_context():
            db.engine.dispose()  # before this PostgreSQL goes away
