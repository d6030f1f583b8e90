"""The HTTP contract of /jobs: what clients send, what they get back, and every error."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from flask import Flask

from jobsvc import create_app
from tests.conftest import fresh_app, settings_from
from tests.support import submit

CONTRACT_FIELDS = {"id", "input_text", "status", "summary", "checklist", "created_at", "updated_at"}


def assert_json_error(response, status: int) -> dict:
    """The one error shape: code, status and a message that says what is wrong."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["code"] == status
    assert body["status"] and body["message"]
    return body


def test_post_answers_201_with_event_id_and_location(client):
    response = client.post("/jobs/", json={"input_text": "Wear gloves."})

    assert response.status_code == 201
    event_id = response.get_json()["event_id"]
    assert set(response.get_json()) == {"event_id"}
    assert str(uuid.UUID(event_id)) == event_id
    assert response.headers["Location"] == f"/jobs/{event_id}/"


def test_get_returns_the_contract_fields_with_utc_timestamps(client):
    event_id = submit(client, "Wear gloves.")
    job = client.get(f"/jobs/{event_id}/").get_json()

    assert set(job) >= CONTRACT_FIELDS
    assert job["id"] == event_id and job["input_text"] == "Wear gloves."
    assert job["status"] in {"pending", "running", "succeeded", "failed"}
    for key in ("created_at", "updated_at"):
        assert datetime.fromisoformat(job[key]).utcoffset().total_seconds() == 0


@pytest.mark.parametrize("path", ["/jobs/", "/jobs"])
def test_post_works_with_and_without_trailing_slash(client, path):
    response = client.post(path, json={"input_text": "Wear gloves."})
    assert response.status_code == 201


def test_get_works_without_trailing_slash_and_with_uppercase_id(client):
    event_id = submit(client, "Wear gloves.")
    for path in (f"/jobs/{event_id}", f"/jobs/{event_id.upper()}/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.get_json()["id"] == event_id


@pytest.mark.parametrize(
    ("kwargs", "status", "says"),
    [
        ({"data": "input_text=hi"}, 415, "Content-Type: application/json"),
        ({"data": "{not json", "content_type": "application/json"}, 400, "Invalid JSON"),
        ({"json": ["input_text"]}, 422, "JSON object"),
        ({"json": "just a string"}, 422, "JSON object"),
        ({"json": {}}, 422, "Missing data"),
        ({"json": {"input_text": 42}}, 422, "Not a valid string"),
        ({"json": {"input_text": True}}, 422, "Not a valid string"),
        ({"json": {"input_text": None}}, 422, "may not be null"),
        ({"json": {"input_text": " \n\t "}}, 422, "must not be blank"),
        ({"json": {"input_text": "x", "status": "succeeded"}}, 422, "Unknown field"),
        ({"json": {"input_text": "x", "summary": "forged"}}, 422, "Unknown field"),
    ],
)
def test_bad_post_bodies_get_a_json_error_that_says_why(client, kwargs, status, says):
    body = assert_json_error(client.post("/jobs/", **kwargs), status)
    assert says in str(body)


def test_input_longer_than_max_input_chars_is_422(client, app):
    limit = app.config["MAX_INPUT_CHARS"]
    body = assert_json_error(client.post("/jobs/", json={"input_text": "a" * (limit + 1)}), 422)
    assert f"the limit is {limit}" in str(body["errors"])
    assert client.post("/jobs/", json={"input_text": "a" * limit}).status_code == 201


def test_body_over_the_size_limit_is_413(client, app):
    too_big = b'{"input_text": "' + b"a" * app.config["MAX_CONTENT_LENGTH"] + b'"}'
    body = assert_json_error(client.post("/jobs/", data=too_big, content_type="application/json"), 413)
    assert "MAX_INPUT_CHARS" in body["message"]


@pytest.mark.parametrize("event_id", ["nope", "1234", "3f1c2b9e-8a4d-4c6b-9e2f-7d5a1b0c4e8", "%00%ff"])
def test_malformed_ids_are_404_json(client, event_id):
    body = assert_json_error(client.get(f"/jobs/{event_id}/"), 404)
    assert "UUID" in body["message"]


def test_unknown_id_is_404_json(client):
    body = assert_json_error(client.get(f"/jobs/{uuid.uuid4()}/"), 404)
    assert "No job" in body["message"]


@pytest.mark.parametrize(
    ("method", "path"), [("delete", "/jobs/"), ("put", "/jobs/"), ("post", f"/jobs/{uuid.UUID(int=1)}/")]
)
def test_unsupported_methods_are_405_json(client, method, path):
    response = getattr(client, method)(path, json={"input_text": "x"})
    assert_json_error(response, 405)
    assert response.headers["Allow"]


def test_unknown_paths_are_404_json(client):
    assert_json_error(client.get("/nothing-here"), 404)


def test_a_bug_is_a_json_500_without_traceback(stack_env):
    app: Flask = create_app(settings_from(stack_env))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    body = assert_json_error(app.test_client().get("/boom"), 500)
    assert "secret internals" not in str(body) and "Traceback" not in str(body)


def test_post_is_accepted_and_kept_pending_when_redis_is_down(stack_env):
    app = create_app(settings_from({**stack_env, "REDIS_URL": "redis://127.0.0.1:9/0"}))
    client = app.test_client()

    event_id = submit(client, "Wear gloves.")

    assert client.get(f"/jobs/{event_id}/").get_json()["status"] == "pending"


def test_a_retried_post_with_the_same_idempotency_key_returns_the_same_job(client):
    headers = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = client.post("/jobs/", json={"input_text": "Wear gloves."}, headers=headers)
    again = client.post("/jobs/", json={"input_text": "Wear gloves."}, headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json()["event_id"] == first.get_json()["event_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


def test_the_same_idempotency_key_with_another_body_is_409(client):
    headers = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    event_id = client.post("/jobs/", json={"input_text": "Wear gloves."}, headers=headers).get_json()[
        "event_id"
    ]

    body = assert_json_error(client.post("/jobs/", json={"input_text": "Other."}, headers=headers), 409)
    assert event_id in body["message"] and "new key" in body["message"]


@pytest.mark.parametrize("key", ["", "x" * 256, "clé"])
def test_an_unusable_idempotency_key_is_400(client, key):
    response = client.post("/jobs/", json={"input_text": "x"}, headers={"Idempotency-Key": key})
    assert "Idempotency-Key" in assert_json_error(response, 400)["message"]


def test_a_full_queue_answers_429_with_retry_after(stack_env, tmp_path):
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/full.sqlite3", "QUEUE_NAME": "nobody-listens"}
    app = fresh_app(env, MAX_PENDING_JOBS=2)
    client = app.test_client()
    replayable = {"Idempotency-Key": "first"}
    client.post("/jobs/", json={"input_text": "one"}, headers=replayable)
    submit(client, "two")

    response = client.post("/jobs/", json={"input_text": "three"})

    body = assert_json_error(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    assert "2 jobs are waiting" in body["message"]
    # A retry of an accepted request still gets its id back.
    assert client.post("/jobs/", json={"input_text": "one"}, headers=replayable).status_code == 201


def test_a_full_queue_answers_429_while_redis_is_down_counting_the_pending_rows(stack_env, tmp_path):
    env = {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/full-offline.sqlite3",
        "REDIS_URL": "redis://127.0.0.1:9/0",
    }
    client = fresh_app(env, MAX_PENDING_JOBS=2).test_client()
    submit(client, "one")
    submit(client, "two")

    response = client.post("/jobs/", json={"input_text": "three"})

    body = assert_json_error(response, 429)
    assert "2 jobs are waiting" in body["message"]


def test_a_database_without_the_schema_answers_503_naming_the_migration(stack_env, tmp_path):
    app = create_app(settings_from({**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/empty.sqlite3"}))

    response = app.test_client().get(f"/jobs/{uuid.UUID(int=1)}/")

    body = assert_json_error(response, 503)
    assert "db upgrade" in body["message"]
