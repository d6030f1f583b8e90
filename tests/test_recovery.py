"""Nothing accepted is lost or stuck: workers killed, Redis stopped or emptied, LLM failing or slow.

These tests run on their own Redis server, database and queue, so that stopping Redis or
killing workers here never disturbs the rest of the suite.
"""

from __future__ import annotations

import signal
import time
import uuid

import psutil
import pytest
from redis import Redis
from rq import Queue

from jobsvc import create_app
from tests.conftest import RedisProcess, each_database, fresh_app, settings_from, spawning_workers
from tests.support import submit, wait_for, wait_for_job


@pytest.fixture(scope="module")
def fault_redis(tmp_path_factory):
    server = RedisProcess(tmp_path_factory.mktemp("fault-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fault_env(stack_env, fault_redis, db_url):
    # SQLite, or PostgreSQL for the tests marked @each_database.
    return {
        **stack_env,
        "REDIS_URL": fault_redis.url,
        "DATABASE_URL": db_url,
        "QUEUE_NAME": "faults",
        # The production defaults, so that the measured recovery times are the real ones.
        "LEASE_SECONDS": "10",
        "RECONCILE_INTERVAL": "5",
        "LLM_MAX_RETRIES": "4",
    }


@pytest.fixture(scope="module")
def fault_app(fault_env):
    app = fresh_app(fault_env)
    return app


@pytest.fixture
def client(fault_app):
    return fault_app.test_client()


@pytest.fixture
def spawn_worker(start_worker, fault_env):
    """Start workers on the fault stack; each one (and its horse) is killed when the test ends."""
    with spawning_workers(start_worker, fault_env) as spawn:
        yield spawn


@pytest.fixture
def fault_worker(spawn_worker):
    return spawn_worker()


def _worker_processes(pid: int) -> list[psutil.Process]:
    """The processes a supervising worker forked to run slots."""
    try:
        return psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []


def _running(client, event_id: str) -> bool:
    return client.get(f"/jobs/{event_id}/").get_json()["status"] == "running"


def _unique(text: str) -> str:
    return f"{text} ({uuid.uuid4()})"


def _start_slow_job(client, fake_llm, seconds_per_call: float) -> str:
    """Submit a job whose LLM calls take a while; return its id once it runs."""
    fake_llm.state.delay = seconds_per_call
    event_id = submit(client, _unique("Wear gloves."))
    wait_for(lambda: _running(client, event_id), what="the job to run")
    return event_id


def test_a_job_survives_four_rate_limits_in_a_row(client, fault_worker, fake_llm):
    text = _unique("Wear gloves.")
    fake_llm.state.fail_next(429, times=4, matching=text)

    job = wait_for_job(client, submit(client, text))

    assert job["status"] == "succeeded", job
    assert len(fake_llm.state.calls_for(text)) == 6  # 4 rate-limited + summary + checklist


def test_insufficient_quota_fails_at_once_with_what_to_do(client, fault_worker, fake_llm):
    text = _unique("Wear gloves.")
    fake_llm.state.fail_next(429, code="insufficient_quota", matching=text)

    job = wait_for_job(client, submit(client, text))

    assert job["status"] == "failed"
    assert "no quota left" in job["error"]
    assert len(fake_llm.state.calls_for(text)) == 1


def test_worker_logs_hold_no_key_and_no_input_text(client, fault_worker, fake_llm, fault_env):
    texts = [_unique("Confidential: the vault code is 4711."), _unique("Secret plans for the launch.")]
    fake_llm.state.fail_next(401, matching=texts[0])
    failed, succeeded = (submit(client, text) for text in texts)
    for event_id in (failed, succeeded):
        wait_for_job(client, event_id)
    # First, the log does hold both jobs' lines, the failure's reason included.
    ended = (f"job {failed} status=failed", f"job {succeeded} status=succeeded")
    wait_for(lambda: all(line in fault_worker.log() for line in ended), what="both jobs' last lines")

    log = fault_worker.log()
    assert f"job {failed} status=running" in log and f"job {succeeded} status=running" in log
    assert "rejected the API key" in log
    assert fault_env["OPENAI_API_KEY"] not in log
    for text in texts:
        assert text not in log and "vault code" not in log


@each_database
def test_sigkill_of_a_worker_process_reruns_its_job_from_the_checkpoint(client, spawn_worker, fake_llm):
    supervisor = spawn_worker(WORKER_PROCESSES="2")
    wait_for(lambda: len(_worker_processes(supervisor.pid)) == 2, what="two worker processes")
    fake_llm.state.delay = 1.0
    text = _unique("Wear gloves.")
    event_id = submit(client, text)
    wait_for(lambda: _running(client, event_id), what="the job to run")
    wait_for(lambda: fake_llm.state.calls_for(text), what="the first LLM call")

    for process in _worker_processes(supervisor.pid):
        process.kill()
    killed_at = time.monotonic()
    job = wait_for_job(client, event_id, timeout=45)

    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    recovery = time.monotonic() - killed_at
    print(f"\nworker processes killed: job succeeded {recovery:.1f}s later")
    assert recovery < 30
    assert len(_worker_processes(supervisor.pid)) == 2, "the supervisor starts new processes"


def test_sigkill_of_the_supervisor_lets_its_processes_finish_their_jobs_then_exit(
    client, spawn_worker, fake_llm
):
    supervisor = spawn_worker(WORKER_PROCESSES="2")
    wait_for(lambda: len(_worker_processes(supervisor.pid)) == 2, what="two worker processes")
    orphans = _worker_processes(supervisor.pid)
    event_id = _start_slow_job(client, fake_llm, seconds_per_call=0.5)

    supervisor.stop(signal.SIGKILL)
    job = wait_for_job(client, event_id)

    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1
    # ...and then they leave, instead of taking new work with no supervisor forever.
    wait_for(lambda: not any(_alive(p) for p in orphans), timeout=30, what="the orphaned processes to exit")


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigkill_of_every_worker_process_at_once_is_recovered_by_a_live_worker(
    client, fault_worker, spawn_worker, fake_llm
):
    event_id = _start_slow_job(client, fake_llm, seconds_per_call=1.0)

    fault_worker.kill_group()  # every process at once, as when a container is lost
    fake_llm.state.delay = 0
    spawn_worker()
    live_since = time.monotonic()
    job = wait_for_job(client, event_id, timeout=45)

    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    recovery = time.monotonic() - live_since
    print(f"\nevery worker process killed: job succeeded {recovery:.1f}s after a live worker existed")
    assert recovery < 30


def test_sigterm_is_a_warm_shutdown_that_finishes_the_current_job(client, fault_worker, fake_llm):
    fake_llm.state.delay = 1.0
    event_id = submit(client, _unique("Wear gloves."))
    wait_for(lambda: _running(client, event_id), what="the job to run")

    assert fault_worker.stop(signal.SIGTERM) == 0
    job = client.get(f"/jobs/{event_id}/").get_json()

    assert job["status"] == "succeeded", job


def test_a_job_over_job_timeout_fails_with_a_clear_message(fault_env, spawn_worker, fake_llm):
    # RQ takes the timeout from the enqueuing side: web and worker share JOB_TIMEOUT.
    settings = {**fault_env, "JOB_TIMEOUT": "1", "LLM_TIMEOUT": "5"}
    client = create_app(settings_from(settings)).test_client()
    spawn_worker(**settings)
    fake_llm.state.delay = 2.0

    job = wait_for_job(client, submit(client, _unique("Wear gloves.")))

    assert job["status"] == "failed"
    assert job["error"] == "The job ran longer than JOB_TIMEOUT=1s and was stopped."


@each_database
def test_post_while_redis_is_down_is_accepted_and_runs_once_redis_is_back(client, fault_worker, fault_redis):
    fault_redis.stop()
    try:
        event_id = submit(client, _unique("Wear gloves."))
        assert client.get(f"/jobs/{event_id}/").get_json()["status"] == "pending"
    finally:
        fault_redis.start()
    back_at = time.monotonic()

    job = wait_for_job(client, event_id, timeout=60)

    assert job["status"] == "succeeded", job
    assert time.monotonic() - back_at < 60


@each_database
def test_jobs_lost_from_a_flushed_redis_are_enqueued_again(client, spawn_worker, fault_redis):
    # No worker listens yet: the jobs sit in the queue, then Redis loses everything.
    event_ids = [submit(client, _unique("Wear gloves.")) for _ in range(3)]
    connection = Redis.from_url(fault_redis.url)
    assert Queue("faults", connection=connection).count >= 3
    connection.flushall()

    spawn_worker()
    flushed_at = time.monotonic()
    jobs = [wait_for_job(client, event_id, timeout=60) for event_id in event_ids]

    assert [job["status"] for job in jobs] == ["succeeded"] * 3
    assert time.monotonic() - flushed_at < 60


def test_reconcile_command_enqueues_what_redis_lost(client, fault_app, fault_redis):
    event_id = submit(client, _unique("Wear gloves."))
    connection = Redis.from_url(fault_redis.url)
    connection.flushall()

    result = fault_app.test_cli_runner().invoke(args=["jobs", "reconcile", "--min-age", "0"])

    assert result.exit_code == 0, result.output
    assert "re-enqueued" in result.output
    assert event_id in Queue("faults", connection=connection).job_ids


def test_a_worker_outlives_redis_dying_mid_job(client, fault_worker, fault_redis, fake_llm):
    event_id = _start_slow_job(client, fake_llm, seconds_per_call=1.0)
    fault_redis.stop()
    try:
        # Redis stays down until the job has finished: then RQ finds Redis gone as it records that.
        assert wait_for_job(client, event_id, timeout=60)["status"] == "succeeded"
        time.sleep(1)
    finally:
        fault_redis.start()

    # The same worker process takes the next job once Redis is back.
    job = wait_for_job(client, submit(client, _unique("After the outage.")), timeout=60)

    assert job["status"] == "succeeded", job
    assert fault_worker.process.poll() is None, fault_worker.log()[-2000:]
