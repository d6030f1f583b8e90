"""Stopping workers: SIGTERM with Redis away, Ctrl-C of `make run`, the supervisor, dyno restarts.

Real processes throughout; each test has a Redis server, database and queue of its own.
Written against RQ 3.0.0's worker loop (see `PoolWorker` in jobsvc/worker/runner.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import psutil
import pytest
from redis import Redis

from jobsvc import create_app
from jobsvc.core import store
from jobsvc.core.models import JobStatus
from jobsvc.llm import Usage
from tests.conftest import RedisProcess, WorkerProcess, fresh_app, settings_from, spawn
from tests.support import submit, wait_for, wait_for_job


@pytest.fixture
def own_redis(tmp_path):
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisProcess(folder)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_env(stack_env, own_redis, tmp_path):
    env = {
        **stack_env,
        "REDIS_URL": own_redis.url,
        "DATABASE_URL": f"sqlite:///{tmp_path}/stopping.sqlite3",
        "QUEUE_NAME": f"stopping-{uuid.uuid4().hex[:8]}",
    }
    fresh_app(env)
    return env


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []


def _redis_lost(worker: WorkerProcess) -> bool:
    log = worker.log()
    return "could not connect to Redis" in log or "lost Redis" in log or "waiting for Redis" in log


@pytest.mark.parametrize("redis_back", [False, True], ids=["redis-away", "redis-just-back"])
def test_a_worker_told_to_stop_while_redis_is_away_or_just_back_leaves_promptly(
    own_env, own_redis, start_worker, redis_back
):
    worker = start_worker(**own_env)
    own_redis.stop()
    wait_for(lambda: _redis_lost(worker), what="the worker to notice Redis is away")
    if redis_back:
        own_redis.start()

    sent = time.monotonic()
    # Measured before the fix: still alive 40 s after the SIGTERM.
    assert worker.stop(signal.SIGTERM, timeout=15) == 0, worker.log()[-3000:]
    print(f"\nworker left {time.monotonic() - sent:.1f}s after SIGTERM")


@pytest.mark.parametrize("processes", ["1", "2"])
def test_ctrl_c_of_make_run_stops_an_idle_worker_before_honcho_kills_it_and_without_a_traceback(
    stack_env, start_worker, tmp_path, processes
):
    instance = tmp_path / "instance"
    env = {
        **stack_env,
        "INSTANCE_PATH": str(instance),
        "REDIS_URL": "",  # the embedded Redis, on its unix socket, as `make run` starts it
        "DATABASE_URL": f"sqlite:///{instance}/jobsvc.sqlite3",
        "QUEUE_NAME": "ctrl-c",
        "LLM_PROVIDER": "offline",
        "WORKER_PROCESSES": processes,  # make run's default is one per core: a supervisor and 2
    }
    redis, redis_log = spawn([sys.executable, "-m", "jobsvc.embedded_redis"], env, tmp_path / "redis.log")
    socket_path = instance / "redis.sock"
    wait_for(lambda: socket_path.exists() and _pings(f"unix://{socket_path}"), what="the embedded Redis")
    server = _children(redis.pid)
    try:
        client = fresh_app(env).test_client()
        worker = start_worker(**env)
        assert wait_for_job(client, submit(client, "Wear gloves. Wash hands."))["status"] == "succeeded"

        # honcho stops every process group at once with SIGTERM, and SIGKILLs after 5 s.
        for pid in (redis.pid, worker.pid):
            os.killpg(pid, signal.SIGTERM)
        sent = time.monotonic()
        code = worker.process.wait(timeout=5)
        print(f"\nidle worker left {time.monotonic() - sent:.1f}s after SIGTERM")
    finally:
        try:
            redis.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(redis.pid, signal.SIGKILL)
            redis.wait()
        for process in server:  # redis-server runs in a session of its own
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        redis_log.close()

    assert code == 0
    after_stop = worker.log().partition("worker got SIGTERM")[2]
    assert after_stop, worker.log()[-2000:]
    assert "Traceback" not in after_stop and "ERROR" not in after_stop, after_stop


def _pings(url: str) -> bool:
    try:
        with Redis.from_url(url) as connection:
            return bool(connection.ping())
    except Exception:
        return False


def test_sigterm_during_the_supervisors_restart_pause_stops_every_process(own_env, start_worker):
    supervisor = start_worker(**{**own_env, "WORKER_PROCESSES": "2"})
    wait_for(lambda: len(_children(supervisor.pid)) == 2, what="two worker processes")
    victim = _children(supervisor.pid)[0]

    victim.kill()
    # The supervisor says so, then pauses a second before it starts another process.
    wait_for(lambda: f"worker process {victim.pid} ended" in supervisor.log(), interval=0.005)
    descendants = psutil.Process(supervisor.pid).children(recursive=True)

    assert supervisor.stop(signal.SIGTERM, timeout=20) == 0, supervisor.log()[-3000:]
    wait_for(lambda: not any(_alive(p) for p in descendants), timeout=10, what="every process to end")


def test_a_sigterm_hands_back_a_job_still_running_when_the_grace_ends(own_env, start_worker, fake_llm):
    env = {
        **own_env,
        "WORKER_SHUTDOWN_GRACE": "2",
        # Far longer than the test: the job cannot be recovered by its lease lapsing.
        "LEASE_SECONDS": "120",
        "LLM_TIMEOUT": "40",
    }
    client = create_app(settings_from(env)).test_client()
    stopping = start_worker(**env)
    text = f"Wear gloves {uuid.uuid4()}."
    fake_llm.state.step_delays["checklist"] = 30.0  # the checklist call, in flight at SIGTERM
    event_id = submit(client, text)
    wait_for(lambda: len(fake_llm.state.calls_for(text)) == 2, timeout=30, what="the checklist call")
    fake_llm.state.step_delays.clear()  # the next worker's checklist call is answered at once
    start_worker(**env)  # the worker that takes over

    sent = time.monotonic()
    assert stopping.stop(signal.SIGTERM, timeout=25) == 0, stopping.log()[-3000:]
    left_after = time.monotonic() - sent
    job = wait_for_job(client, event_id, timeout=30)

    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    calls = fake_llm.state.calls_for(text)
    summarize_calls = [c for c in calls if "checklist" not in c["messages"][0]["content"].lower()]
    assert len(summarize_calls) == 1, "the checkpointed summary is not paid for twice"
    print(f"\nstopped worker left {left_after:.1f}s after SIGTERM (WORKER_SHUTDOWN_GRACE=2)")
    assert left_after < 2 + 8  # the grace, plus generous time to hand back and exit
    assert f"handed back 1 running jobs ({event_id})" in stopping.log()


def test_a_handed_back_run_keeps_its_checkpoint_and_does_not_count_toward_max_attempts(app_context):
    job_id = store.create_job(f"Wear gloves {uuid.uuid4()}.")[0].id
    store.claim_job(job_id, "leaving", 60)
    store.save_summary(job_id, "leaving", "Wear gloves.", "openai", "fake-model", Usage())

    assert not store.hand_back_job(job_id, "someone-else")  # only the lease's holder hands it back
    assert store.hand_back_job(job_id, "leaving")

    job = store.get_job(job_id)
    assert (job.status, job.lease_owner, job.summary) == (JobStatus.PENDING, None, "Wear gloves.")
    assert (job.attempts, job.run_attempts) == (1, 0)
