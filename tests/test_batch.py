"""POST /jobs/batch and `flask jobs submit` with several documents: all accepted in one go, or none."""

from __future__ import annotations

import json
import uuid

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import func, select

from jobsvc.core.models import Job
from jobsvc.extensions import db
from tests.conftest import RedisProcess, free_port, fresh_app
from tests.postgres import running_postgres, server_binaries
from tests.support import wait_for_job
from tests.test_metrics import scrape


def _texts(count: int) -> list[str]:
    marker = uuid.uuid4()
    return [f"Wear gloves, document {n} of {marker}." for n in range(count)]


def _stored(app, texts: list[str]) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Job).where(Job.input_text.in_(texts)))


@pytest.fixture
def own_queue(stack_env, tmp_path):
    """An app with a database, a queue and metrics of its own."""
    env = {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/batch.sqlite3",
        "QUEUE_NAME": f"batch-{uuid.uuid4()}",
    }
    return env, fresh_app(env, MAX_BATCH_ITEMS=3, MAX_PENDING_JOBS=5)


def test_a_batch_answers_201_with_one_id_per_item_in_item_order(client):
    texts = _texts(3)

    response = client.post("/jobs/batch", json={"items": [{"input_text": t} for t in texts]})

    assert response.status_code == 201, response.get_json()
    ids = response.get_json()["event_ids"]
    assert [client.get(f"/jobs/{i}/").get_json()["input_text"] for i in ids] == texts


def test_one_invalid_item_gives_422_naming_its_index_and_creates_nothing(client, app):
    texts = _texts(3)
    items = [{"input_text": texts[0]}, {"input_text": "   "}, {"input_text": texts[2]}]

    response = client.post("/jobs/batch", json={"items": items})

    assert response.status_code == 422
    assert list(response.get_json()["errors"]["json"]["items"]) == ["1"]
    assert "input_text" in response.get_json()["errors"]["json"]["items"]["1"]
    assert _stored(app, texts) == 0


@pytest.mark.parametrize("count", [0, 4])
def test_a_batch_of_no_items_or_more_than_max_batch_items_is_422(own_queue, count):
    _, app = own_queue

    response = app.test_client().post("/jobs/batch", json={"items": [{"input_text": "x"}] * count})

    assert response.status_code == 422
    assert "MAX_BATCH_ITEMS" in str(response.get_json()["errors"])


def test_a_batch_is_one_transaction_and_one_enqueue_of_every_job_in_order(own_queue):
    env, app = own_queue
    client = app.test_client()

    ids = client.post("/jobs/batch", json={"items": [{"input_text": t} for t in _texts(3)]}).get_json()[
        "event_ids"
    ]

    metrics = scrape(client)
    assert metrics[("jobsvc_jobs_created_total", ())] == 3
    assert metrics[("jobsvc_ingest_commits_total", ())] == 1
    assert Queue(env["QUEUE_NAME"], connection=Redis.from_url(env["REDIS_URL"])).job_ids == ids


def test_a_batch_that_would_overfill_the_queue_is_429_and_creates_nothing(own_queue):
    _, app = own_queue
    client = app.test_client()
    assert (
        client.post("/jobs/batch", json={"items": [{"input_text": t} for t in _texts(3)]}).status_code == 201
    )
    texts = _texts(3)

    response = client.post("/jobs/batch", json={"items": [{"input_text": t} for t in texts]})

    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert _stored(app, texts) == 0


def test_a_retried_batch_with_the_same_idempotency_key_gets_the_same_ids_and_creates_nothing(client, app):
    texts = _texts(3)
    body = {"items": [{"input_text": t} for t in texts]}
    headers = {"Idempotency-Key": f"batch-{uuid.uuid4()}"}
    first = client.post("/jobs/batch", json=body, headers=headers)

    again = client.post("/jobs/batch", json=body, headers=headers)

    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["event_ids"] == first.get_json()["event_ids"]
    assert "Idempotent-Replayed" not in first.headers
    assert _stored(app, texts) == 3


def test_an_idempotency_key_with_another_batch_or_a_single_job_is_409(client):
    key = f"batch-{uuid.uuid4()}"
    client.post("/jobs/batch", json={"items": [{"input_text": "one"}]}, headers={"Idempotency-Key": key})

    other_batch = client.post(
        "/jobs/batch", json={"items": [{"input_text": "two"}]}, headers={"Idempotency-Key": key}
    )
    single = client.post("/jobs/", json={"input_text": "one"}, headers={"Idempotency-Key": key})

    assert other_batch.status_code == 409 and "new key" in other_batch.get_json()["message"]
    assert single.status_code == 409


def test_the_batch_endpoint_is_in_the_openapi_document_as_submit_jobs(client):
    spec = client.get("/openapi.json").get_json()

    post = spec["paths"]["/jobs/batch"]["post"]
    assert post["operationId"] == "submitJobs"
    assert {"201", "409", "422", "429"} <= set(post["responses"])
    assert "Idempotency-Key" in [p["name"] for p in post["parameters"]]


def test_every_job_of_a_batch_runs(e2e_client, worker):
    ids = e2e_client.post("/jobs/batch", json={"items": [{"input_text": t} for t in _texts(3)]}).get_json()[
        "event_ids"
    ]

    assert [wait_for_job(e2e_client, i)["status"] for i in ids] == ["succeeded"] * 3


def test_a_batch_posted_while_redis_is_down_is_accepted_and_runs_once_redis_is_back(
    stack_env, start_worker, tmp_path_factory
):
    redis = RedisProcess(tmp_path_factory.mktemp("batch-redis"))
    redis.start()
    folder = tmp_path_factory.mktemp("batch-down")
    env = {
        **stack_env,
        "REDIS_URL": redis.url,
        "DATABASE_URL": f"sqlite:///{folder}/down.sqlite3",
        "QUEUE_NAME": "batch-down",
        "RECONCILE_INTERVAL": "1",
    }
    client = fresh_app(env).test_client()
    try:
        redis.stop()
        response = client.post("/jobs/batch", json={"items": [{"input_text": t} for t in _texts(2)]})
        redis.start()
        worker = start_worker(**env)
        jobs = [wait_for_job(client, i, timeout=60) for i in response.get_json()["event_ids"]]
        worker.kill_group()
    finally:
        redis.stop()

    assert response.status_code == 201
    assert [job["status"] for job in jobs] == ["succeeded"] * 2


def _cli(app, *args: str):
    return app.test_cli_runner().invoke(args=["jobs", "submit", *args])


def test_submit_with_several_files_submits_one_job_per_file_as_one_batch(own_queue, tmp_path):
    _, app = own_queue
    texts = _texts(2)
    for n, text in enumerate(texts):
        (tmp_path / f"doc{n}.txt").write_text(text, encoding="utf-8")

    result = _cli(app, "--file", str(tmp_path / "doc0.txt"), "--file", str(tmp_path / "doc1.txt"))

    assert result.exit_code == 0, result.output
    ids = result.output.split()
    with app.app_context():
        assert [db.session.get(Job, i).input_text for i in ids] == texts
    assert scrape(app.test_client())[("jobsvc_ingest_commits_total", ())] == 1


def test_submit_with_a_jsonl_file_submits_one_job_per_line_and_refuses_all_if_one_is_bad(own_queue, tmp_path):
    _, app = own_queue
    texts = _texts(2)
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps({"input_text": t}) for t in texts) + "\n", encoding="utf-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"input_text": "fine"}) + "\n" + json.dumps({"input_text": ""}) + "\n")

    accepted = _cli(app, "--jsonl", str(good))
    refused = _cli(app, "--jsonl", str(bad))

    assert accepted.exit_code == 0, accepted.output
    assert len(accepted.output.split()) == 2 and _stored(app, texts) == 2
    assert refused.exit_code == 2 and "1" in refused.output and "input_text" in refused.output
    assert _stored(app, ["fine"]) == 0


@pytest.mark.skipif(server_binaries() is None, reason="PostgreSQL server binaries are not installed")
def test_a_keyed_batch_is_created_once_and_replayed_on_postgresql(stack_env):
    with running_postgres(free_port()) as url:
        app = fresh_app({**stack_env, "DATABASE_URL": url, "QUEUE_NAME": "batch-postgres"})
        client = app.test_client()
        texts = _texts(3)
        body = {"items": [{"input_text": t} for t in texts]}
        headers = {"Idempotency-Key": "pg-batch"}

        first = client.post("/jobs/batch", json=body, headers=headers)
        again = client.post("/jobs/batch", json=body, headers=headers)
        stored = _stored(app, texts)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()  # before this test's PostgreSQL goes away

    assert first.status_code == 201 and again.status_code == 201
    assert again.get_json()["event_ids"] == first.get_json()["event_ids"]
    assert stored == 3


def test_a_batch_over_max_batch_bytes_is_413_naming_that_limit(stack_env, tmp_path):
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/big.sqlite3", "QUEUE_NAME": "batch-big"}
    app = fresh_app(env, MAX_BATCH_BYTES=1000)
    texts = _texts(3)

    response = app.test_client().post(
        "/jobs/batch", json={"items": [{"input_text": text * 20} for text in texts]}
    )

    assert response.status_code == 413
    assert "MAX_BATCH_BYTES=1000" in response.get_json()["message"]
