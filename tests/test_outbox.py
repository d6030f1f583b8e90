"""The webhook outbox with real processes: a delivery owed by a job's row survives Redis down,
Redis emptied and a worker killed mid-delivery, and deliveries never hold up jobs.

These tests stop, empty and restart a Redis server of their own, and kill workers, so
that nothing here disturbs the rest of the suite.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue

from jobsvc.core import store
from jobsvc.core.models import utcnow
from jobsvc.core.queue import enqueue_delivery, get_redis, webhooks_queue_name
from tests.conftest import RedisProcess, fresh_app, spawning_workers
from tests.receivers import start_receiver, stop_receiver
from tests.support import submit, wait_for, wait_for_job
from tests.test_webhooks import SECRET, verify


@pytest.fixture(scope="module")
def outbox_redis(tmp_path_factory):
    server = RedisProcess(tmp_path_factory.mktemp("outbox-redis"))
    server.start()
    yield server
    if server.process is None:  # a test that stopped it failed before starting it again
        server.start()
    server.stop()


@pytest.fixture(scope="module")
def outbox_env(stack_env, outbox_redis, tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("outbox-db")
    return {
        **stack_env,
        "REDIS_URL": outbox_redis.url,
        "DATABASE_URL": f"sqlite:///{folder}/outbox.sqlite3",
        "QUEUE_NAME": "outbox",
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_ALLOW_PRIVATE": "true",  # the receivers are on loopback
        "WEBHOOK_RETRY_DELAYS": "2,2,2",
        "WEBHOOK_TIMEOUT": "5",
        "RECONCILE_INTERVAL": "1",
    }


@pytest.fixture(scope="module")
def outbox_app(outbox_env) -> Flask:
    return fresh_app(outbox_env)


@pytest.fixture
def client(outbox_app):
    return outbox_app.test_client()


@pytest.fixture
def spawn_worker(start_worker, outbox_env):
    """Start workers on the outbox stack; each one is killed when the test ends."""
    with spawning_workers(start_worker, outbox_env) as spawn:
        yield spawn


@pytest.fixture
def hanging_receiver():
    server = start_receiver(hold_first=True)
    yield server
    stop_receiver(server)


def submit_with_callback(client, url: str) -> str:
    body = {"input_text": f"Wear gloves ({uuid.uuid4()}).", "callback_url": url}
    response = client.post("/jobs/", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["event_id"]


def webhook(app: Flask, event_id: str) -> dict[str, Any]:
    """The job's webhook state, read from the database (no Redis needed)."""
    with app.app_context():
        job = store.get_job(event_id)
        assert job is not None and job.webhook is not None
        return {**job.webhook, "status": job.status.value}


def delivered(app: Flask, event_id: str) -> dict[str, Any] | None:
    state = webhook(app, event_id)
    return state if state["state"] == "delivered" else None


def ended(app: Flask, callback_url: str | None) -> str:
    """A job that has just ended (canceled), with or without a callback_url."""
    with app.app_context():
        job, _ = store.create_job(f"Wear gloves ({uuid.uuid4()}).", callback_url=callback_url)
        assert store.cancel_job(job.id)
        return job.id


def test_an_ended_job_owes_a_delivery_only_with_a_callback_url(outbox_app):
    with_callback = ended(outbox_app, "http://127.0.0.1:9/hook")
    without = ended(outbox_app, None)

    with outbox_app.app_context():
        owed = store.owed_webhooks(utcnow())

    assert with_callback in owed
    assert without not in owed


def test_a_claimed_delivery_is_held_from_other_senders_until_the_claim_runs_out(outbox_app):
    job_id = ended(outbox_app, "http://127.0.0.1:9/hook")

    with outbox_app.app_context():
        assert store.claim_webhook(job_id, hold_seconds=60) is not None
        assert store.claim_webhook(job_id, hold_seconds=60) is None  # a second sender finds nothing due
        assert job_id not in store.owed_webhooks(utcnow())
        assert job_id in store.owed_webhooks(utcnow() + timedelta(seconds=61))  # the sender died


def test_an_attempt_recorded_for_an_earlier_outcome_is_refused(outbox_app):
    job_id = ended(outbox_app, "http://127.0.0.1:9/hook")
    with outbox_app.app_context():
        claimed = store.claim_webhook(job_id, hold_seconds=60)
        assert claimed is not None and store.reopen_job(job_id)

        # The attempt for outcome 0 ends after the job was retried: it must not count for the next one.
        assert not store.record_webhook_attempt(job_id, claimed.retries, error=None, next_due=None)
        job = store.get_job(job_id)

    assert job is not None and job.webhook is not None
    assert (job.webhook["state"], job.webhook["attempts"], job.webhook_due_at) == ("pending", 0, None)


def test_a_job_that_ends_while_redis_is_down_is_delivered_once_redis_is_back(
    client, outbox_app, spawn_worker, outbox_redis, receiver, fake_llm
):
    spawn_worker()
    fake_llm.state.delay = 1.0
    event_id = submit_with_callback(client, receiver.url)
    wait_for(lambda: webhook(outbox_app, event_id)["status"] == "running", what="the job to run")

    outbox_redis.stop()
    try:
        wait_for(lambda: webhook(outbox_app, event_id)["status"] == "succeeded", timeout=60, what="the end")
        assert receiver.deliveries == []  # ended with no Redis: nothing could be queued
    finally:
        outbox_redis.start()

    state = wait_for(lambda: delivered(outbox_app, event_id), timeout=60, what="the delivery")

    (delivery,) = receiver.deliveries
    assert verify(delivery)["status"] == "succeeded"
    assert state["attempts"] == 1


def test_a_delivery_lost_with_redis_data_is_still_made(
    client, outbox_app, spawn_worker, outbox_redis, receiver
):
    # No worker runs yet: the job ends (canceled) and its delivery waits in Redis only.
    event_id = submit_with_callback(client, receiver.url)
    assert client.post(f"/jobs/{event_id}/cancel").status_code == 200
    connection = Redis.from_url(outbox_redis.url)
    assert f"webhook-{event_id}" in Queue("outbox-webhooks", connection=connection).job_ids

    connection.flushall()  # Redis loses every queue and job
    spawn_worker()

    state = wait_for(lambda: delivered(outbox_app, event_id), timeout=60, what="the delivery")

    (delivery,) = receiver.deliveries
    assert verify(delivery)["status"] == "canceled"
    assert state["attempts"] == 1


def test_a_worker_killed_mid_delivery_leaves_it_to_another_worker(
    client, outbox_app, spawn_worker, hanging_receiver
):
    first = spawn_worker()
    event_id = submit_with_callback(client, hanging_receiver.url)
    assert hanging_receiver.holding.wait(30), "the delivery never reached the receiver"

    first.kill_group()  # SIGKILL, mid-delivery: the attempt is never recorded
    spawn_worker()

    state = wait_for(lambda: delivered(outbox_app, event_id), timeout=90, what="the delivery")

    # At least once: the receiver saw the interrupted attempt again, under the same webhook-id,
    # and answered one of them.
    assert [verify(d)["id"] for d in hanging_receiver.deliveries] == [event_id, event_id]
    assert len({d["headers"]["webhook-id"] for d in hanging_receiver.deliveries}) == 1
    assert hanging_receiver.answered == [204]
    assert state["attempts"] == 1


def test_a_delivery_held_by_a_slow_receiver_does_not_hold_up_jobs(
    client, outbox_app, spawn_worker, hanging_receiver
):
    spawn_worker(WORKER_CONCURRENCY="1", WEBHOOK_CONCURRENCY="1", WEBHOOK_TIMEOUT="60")
    event_id = submit_with_callback(client, hanging_receiver.url)
    assert hanging_receiver.holding.wait(30), "the delivery never reached the receiver"

    job = wait_for_job(client, submit(client, f"Label containers ({uuid.uuid4()})."))

    assert job["status"] == "succeeded"
    assert webhook(outbox_app, event_id)["attempts"] == 0  # that delivery is still in flight
    hanging_receiver.release.set()


def test_deliveries_waiting_in_their_queue_do_not_count_toward_max_pending_jobs(stack_env, tmp_path):
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/quota.sqlite3", "QUEUE_NAME": "quota"}
    app = fresh_app(env, MAX_PENDING_JOBS=2)
    with app.app_context():
        for _ in range(3):
            enqueue_delivery(str(uuid.uuid4()))
        assert Queue(webhooks_queue_name("quota"), connection=get_redis()).count == 3

    response = app.test_client().post("/jobs/", json={"input_text": "Wear gloves."})

    assert response.status_code == 201, response.get_json()
