"""200 concurrent POSTs through gunicorn while two workers write results to the same SQLite file."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from jobsvc.core.models import Job, JobStatus
from jobsvc.extensions import db
from tests.conftest import GunicornProcess, fresh_app
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
