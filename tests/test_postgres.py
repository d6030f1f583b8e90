"""The same service on PostgreSQL: schema, transitions, a job through a real worker, the pool
arithmetic of a small hosted plan, and a database that does not answer.

Tests that need a server skip (with the reason) when PostgreSQL's binaries are missing.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import urllib.error
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from jobsvc import create_app
from jobsvc.core import store
from jobsvc.core.models import JobStatus
from jobsvc.extensions import db
from jobsvc.llm import Usage
from tests.conftest import REPO, GunicornProcess, free_port, fresh_app, settings_from
from tests.postgres import SKIP_REASON, create_database, running_postgres, server_binaries
from tests.support import submit, wait_for, wait_for_job
from tests.test_wsgi import http

NO_USAGE = Usage()


@pytest.fixture(scope="module")
def postgres_env(stack_env, postgres_server):
    url = create_database(postgres_server, f"jobs_{uuid.uuid4().hex[:12]}")
    return {**stack_env, "DATABASE_URL": url, "QUEUE_NAME": "test-postgres"}


@pytest.fixture(scope="module")
def pg_app(postgres_env):
    app = fresh_app(postgres_env)
    return app


def test_transitions_keep_utc_and_guard_finished_jobs(pg_app):
    with pg_app.app_context():
        job_id = store.create_job("Wear gloves.")[0].id
        assert store.claim_job(job_id, "me", 10).status is JobStatus.RUNNING
        assert store.save_summary(job_id, "me", "S", "offline", "m", NO_USAGE)
        assert store.complete_job(job_id, "me", "- a", NO_USAGE)
        assert store.claim_job(job_id, "me", 10) is None
        job = store.get_job(job_id)
        assert job.status is JobStatus.SUCCEEDED
        assert job.finished_at.utcoffset().total_seconds() == 0


def test_a_job_succeeds_through_a_worker_on_postgres(pg_app, postgres_env, start_worker, fake_llm):
    worker = start_worker(**postgres_env)
    client = pg_app.test_client()
    text = f"Lock the door {uuid.uuid4()}."
    try:
        job = wait_for_job(client, submit(client, text))
    finally:
        worker.stop()  # before this module's PostgreSQL goes away

    assert job["status"] == "succeeded", job
    assert len(fake_llm.state.calls_for(text)) == 2


def _client_connections(conn: psycopg.Connection, database: str) -> int:
    # Client backends only: an autovacuum worker on the database is no connection of the app's.
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
        (database,),
    ).fetchone()[0]


def _post(url: str, text: str) -> int:
    try:
        return http("POST", url, {"input_text": text})[0]
    except urllib.error.HTTPError as exc:
        return exc.code


PLAN_CONNECTIONS = 20  # Heroku Postgres's smallest plan
JOBS = 200


@pytest.mark.skipif(server_binaries() is None, reason=SKIP_REASON)
@pytest.mark.timeout(300)
def test_the_default_pools_fit_a_20_connection_plan_under_load(stack_env, start_worker, tmp_path, fake_llm):
    with running_postgres(free_port(), max_connections=PLAN_CONNECTIONS) as url:
        # Heroku's spelling of the URL, as the add-on sets it.
        heroku_url = url.replace("postgresql+psycopg://", "postgres://")
        env = {**stack_env, "DATABASE_URL": heroku_url, "QUEUE_NAME": "pg-plan", "WORKER_CONCURRENCY": "32"}
        app = fresh_app(env)
        with app.app_context():
            db.engine.dispose()  # the test's own app holds no connection during the count
        # Two web processes and two worker processes, as the Procfile and app.json scale them.
        web = GunicornProcess({**env, "WEB_CONCURRENCY": "2"}, tmp_path / "gunicorn.log")
        worker = start_worker(**{**env, "WORKER_PROCESSES": "2"})
        monitor = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
        peak, stop = [0], threading.Event()

        def watch() -> None:
            while not stop.wait(0.05):
                peak[0] = max(peak[0], _client_connections(monitor, "postgres"))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        texts = [f"Check the fire exits, plan test {uuid.uuid4()}." for _ in range(JOBS)]
        try:
            with ThreadPoolExecutor(max_workers=64) as pool:
                statuses = list(pool.map(lambda text: _post(f"{web.url}/jobs/", text), texts))

            def unfinished() -> int:
                return monitor.execute(
                    "SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed')"
                ).fetchone()[0]

            wait_for(lambda: unfinished() == 0, timeout=120, interval=0.5, what="every job to finish")
            final = dict(monitor.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())
        finally:
            stop.set()
            watcher.join()
            web.stop()
            worker.stop()
            monitor.close()

    print(f"\npeak connections, 2 web + 2 worker processes under {JOBS} concurrent POSTs: {peak[0]}")
    assert statuses == [201] * JOBS
    assert final == {"succeeded": JOBS}
    # (2 web + 2 worker processes) x (DB_POOL_SIZE 4 + DB_MAX_OVERFLOW 0), room left for `release`.
    assert peak[0] <= 16
    assert "too many clients" not in web.log() + worker.log()


def test_a_database_that_refuses_connections_answers_503_that_says_what_to_check(stack_env):
    closed = f"postgresql://jobsvc@127.0.0.1:{free_port()}/jobs"
    client = create_app(settings_from({**stack_env, "DATABASE_URL": closed})).test_client()

    response = client.get("/jobs/")

    assert response.status_code == 503
    assert "connection refused" in response.get_json()["message"]
    assert "DATABASE_URL" in response.get_json()["message"]
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.timeout(60)
def test_a_database_that_never_answers_fails_the_request_instead_of_hanging(stack_env):
    # A port that accepts TCP connections and then says nothing, like a blackholed host.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"postgresql://jobsvc@127.0.0.1:{silent.getsockname()[1]}/jobs"
        app = create_app(settings_from({**stack_env, "DATABASE_URL": url, "DB_CONNECT_TIMEOUT": "2"}))

        response = app.test_client().get("/jobs/")

    assert response.status_code == 503
    assert "DB_CONNECT_TIMEOUT" in response.get_json()["message"]


@pytest.mark.skipif(server_binaries() is None, reason=SKIP_REASON)
@pytest.mark.timeout(300)  # a fresh stack twice and a PostgreSQL server: slow on a busy machine
def test_the_benchmark_measures_postgresql_next_to_sqlite():
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--only", "postgres"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(
        r"\| PostgreSQL drain, \d+ jobs, instant LLM \| \d+ jobs/s .*correctness: ok", result.stdout
    )
