"""What client developers build on: listing, cancel, retry, usage, API keys."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from redis import Redis

from jobsvc import create_app
from jobsvc.errors import Unauthorized
from jobsvc.web.auth import owner_filter
from tests.conftest import fresh_app
from tests.support import submit, wait_for, wait_for_job


@pytest.fixture
def own_app(stack_env, tmp_path) -> Flask:
    """An app on an empty database and a queue nobody listens on."""
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/own.sqlite3", "QUEUE_NAME": "unattended"}
    app = fresh_app(env)
    return app


def test_list_is_newest_first_and_paginated(own_app):
    client = own_app.test_client()
    ids = [submit(client, f"Job number {n}. " + "x" * 300) for n in range(5)]

    response = client.get("/jobs/?page=1&page_size=2")

    assert response.status_code == 200
    assert [job["id"] for job in response.get_json()] == ids[::-1][:2]
    assert '"total": 5' in response.headers["X-Pagination"]
    second = client.get("/jobs/?page=2&page_size=2").get_json()
    assert [job["id"] for job in second] == ids[::-1][2:4]


def test_list_shows_an_excerpt_unless_the_input_is_asked_for(own_app):
    client = own_app.test_client()
    submit(client, "Wash hands. " + "x" * 500)

    (job,) = client.get("/jobs/").get_json()
    assert job["input_text"] is None
    assert job["input_excerpt"].startswith("Wash hands.") and len(job["input_excerpt"]) == 200
    (full,) = client.get("/jobs/?include_input=true").get_json()
    assert len(full["input_text"]) == 512


def test_list_filters_by_status_and_creation_time(own_app):
    client = own_app.test_client()
    first = submit(client, "First.")
    cutoff = client.get(f"/jobs/{first}/").get_json()["created_at"]
    second = submit(client, "Second.")
    client.post(f"/jobs/{second}/cancel")

    assert [j["id"] for j in client.get("/jobs/?status=canceled").get_json()] == [second]
    assert [j["id"] for j in client.get("/jobs/?status=pending").get_json()] == [first]
    after = client.get("/jobs/", query_string={"created_after": cutoff}).get_json()
    assert {j["id"] for j in after} == {first, second}
    before = client.get("/jobs/", query_string={"created_before": cutoff}).get_json()
    assert before == []


def test_bad_list_filters_are_422_json(own_app):
    response = own_app.test_client().get("/jobs/?status=lost&created_after=yesterday")
    assert response.status_code == 422
    assert set(response.get_json()["errors"]["query"]) == {"status", "created_after"}


def test_cancel_a_pending_job_twice_then_retry_it(own_app):
    client = own_app.test_client()
    event_id = submit(client, "Wear gloves.")

    first = client.post(f"/jobs/{event_id}/cancel")
    again = client.post(f"/jobs/{event_id}/cancel")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.get_json()["status"] == "canceled"

    retried = client.post(f"/jobs/{event_id}/retry").get_json()
    assert (retried["status"], retried["retries"], retried["error"]) == ("pending", 1, None)
    assert client.post(f"/jobs/{event_id}/retry").get_json()["retries"] == 1


def test_cancel_or_retry_a_finished_job_is_409(e2e_client, worker):
    event_id = submit(e2e_client, f"Wear gloves {uuid.uuid4()}.")
    wait_for_job(e2e_client, event_id)

    for action in ("cancel", "retry"):
        response = e2e_client.post(f"/jobs/{event_id}/{action}")
        assert response.status_code == 409 and "succeeded" in response.get_json()["message"]


def test_cancel_stops_a_running_job(e2e_client, worker, fake_llm):
    fake_llm.state.delay = 1.5
    text = f"Wear gloves {uuid.uuid4()}."
    event_id = submit(e2e_client, text)
    wait_for(lambda: e2e_client.get(f"/jobs/{event_id}/").get_json()["status"] == "running", what="running")

    canceled = e2e_client.post(f"/jobs/{event_id}/cancel").get_json()

    assert canceled["status"] == "canceled"
    wait_for(lambda: f"job {event_id} run ended early" in worker.log(), what="the worker to stop the job")
    job = e2e_client.get(f"/jobs/{event_id}/").get_json()
    assert (job["status"], job["summary"]) == ("canceled", None)
    assert len(fake_llm.state.calls_for(text)) == 1, "no LLM call after the cancel"


def test_retry_runs_a_failed_job_again_under_the_same_id(e2e_client, worker, fake_llm):
    text = f"Wear gloves {uuid.uuid4()}."
    fake_llm.state.fail_next(401, matching=text)
    event_id = submit(e2e_client, text)
    assert wait_for_job(e2e_client, event_id)["status"] == "failed"

    assert e2e_client.post(f"/jobs/{event_id}/retry").status_code == 200
    job = wait_for_job(e2e_client, event_id)

    assert (job["status"], job["attempts"], job["retries"]) == ("succeeded", 2, 1)


def test_usage_reports_the_providers_token_counts_for_both_steps(e2e_client, worker, fake_llm):
    text = f"Wear gloves {uuid.uuid4()}."
    job = wait_for_job(e2e_client, submit(e2e_client, text))

    # The fake server reports 40 prompt tokens per call, and one completion token per word.
    completions = [len(job["summary"].split()), 4 + len(("Act on: " + job["summary"][:80]).split()) - 2]
    assert job["usage"]["prompt_tokens"] == 80
    assert job["usage"]["total_tokens"] == job["usage"]["prompt_tokens"] + job["usage"]["completion_tokens"]
    assert job["usage"]["completion_tokens"] > completions[0]
    assert job["started_at"] and job["finished_at"]


@pytest.fixture
def locked_app(stack_env, tmp_path) -> Flask:
    env = {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/locked.sqlite3",
        # A failed-authentication budget of its own: AUTH_FAILURE_LIMIT counts per queue name.
        "QUEUE_NAME": f"locked-{uuid.uuid4()}",
        "API_KEYS": "key-one, key-two",
    }
    app = fresh_app(env)
    return app


@pytest.mark.parametrize("header", [None, "Bearer wrong", "key-one", "Basic key-one", "Bearer "])
def test_with_api_keys_set_a_missing_or_wrong_key_is_401_json(locked_app, header):
    headers = {"Authorization": header} if header else {}
    response = locked_app.test_client().get("/jobs/", headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.get_json()["message"]


@pytest.mark.parametrize("key", ["key-one", "key-two"])
def test_with_api_keys_set_each_key_works(locked_app, key):
    client = locked_app.test_client()
    response = client.post("/jobs/", json={"input_text": "Hi."}, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201


def test_api_keys_are_declared_in_the_openapi_document(locked_app, app):
    spec = locked_app.test_client().get("/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert spec["security"] == [{"bearerAuth": []}]
    # Documents stay public, and a server without keys does not claim to need them.
    assert "securitySchemes" not in app.test_client().get("/openapi.json").get_json()["components"]


def limited_app(stack_env, tmp_path, **settings: str) -> Flask:
    env = {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/limited.sqlite3",
        "QUEUE_NAME": f"limited-{uuid.uuid4()}",  # a fresh budget for each test
        **settings,
    }
    app = fresh_app(env)
    return app


def test_over_the_rate_limit_is_429_json_with_retry_after(stack_env, tmp_path):
    client = limited_app(stack_env, tmp_path, RATE_LIMIT="3/minute").test_client()
    statuses = [client.get("/jobs/").status_code for _ in range(3)]

    response = client.get("/jobs/")

    assert statuses == [200, 200, 200]
    assert response.status_code == 429
    assert response.get_json()["code"] == 429 and response.get_json()["message"]
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_web_processes_share_one_budget_through_redis(stack_env, tmp_path):
    first = limited_app(stack_env, tmp_path, RATE_LIMIT="4/minute")
    second = create_app({**first.config, "RATE_LIMIT": "4/minute"})
    one, two = first.test_client(), second.test_client()

    answers = [client.get("/jobs/").status_code for client in (one, two, one, two, one)]

    assert answers == [200, 200, 200, 200, 429]


def test_each_api_key_has_its_own_budget(stack_env, tmp_path):
    client = limited_app(stack_env, tmp_path, RATE_LIMIT="2/minute", API_KEYS="alpha,beta").test_client()
    alpha, beta = ({"Authorization": f"Bearer {key}"} for key in ("alpha", "beta"))

    assert [client.get("/jobs/", headers=alpha).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/jobs/", headers=beta).status_code == 200


def test_docs_are_not_rate_limited(stack_env, tmp_path):
    client = limited_app(stack_env, tmp_path, RATE_LIMIT="1/minute").test_client()
    assert [client.get("/openapi.json").status_code for _ in range(3)] == [200, 200, 200]


def limiter_keys(app: Flask) -> set[bytes]:
    """Every key the rate limiter keeps in Redis for this app."""
    redis = Redis.from_url(app.config["REDIS_URL"])
    return set(redis.scan_iter(match=f"*{app.config['QUEUE_NAME']}*"))


def test_random_tokens_get_10_guesses_then_429_and_no_redis_key_each(stack_env, tmp_path):
    app = limited_app(stack_env, tmp_path, RATE_LIMIT="1000/minute", API_KEYS="shop:sk-right-key")
    client = app.test_client()
    client.get("/jobs/", headers={"Authorization": "Bearer sk-right-key"})
    keys_before = limiter_keys(app)

    statuses = [
        client.get("/jobs/", headers={"Authorization": f"Bearer {uuid.uuid4().hex}"}).status_code
        for _ in range(50)
    ]

    assert statuses == [401] * 10 + [429] * 40
    # The address's request budget and its failure budget: two keys, however many guesses.
    assert len(limiter_keys(app) - keys_before) <= 2


def test_an_address_that_keeps_guessing_is_refused_even_with_the_right_key(stack_env, tmp_path):
    app = limited_app(stack_env, tmp_path, API_KEYS="shop:sk-right-key", AUTH_FAILURE_LIMIT="3/minute")
    client = app.test_client()
    guesses = [client.get("/jobs/", headers={"Authorization": f"Bearer guess-{n}"}) for n in range(3)]

    right = client.get("/jobs/", headers={"Authorization": "Bearer sk-right-key"})
    from_elsewhere = client.get(
        "/jobs/",
        headers={"Authorization": "Bearer sk-right-key"},
        environ_base={"REMOTE_ADDR": "198.51.100.4"},
    )

    assert [guess.status_code for guess in guesses] == [401, 401, 401]
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
    assert "failed authentications" in right.get_json()["message"]
    assert from_elsewhere.status_code == 200


def test_unauthenticated_requests_spend_the_address_budget_not_a_budget_per_token(stack_env, tmp_path):
    app = limited_app(stack_env, tmp_path, RATE_LIMIT="2/minute", API_KEYS="alpha")
    client = app.test_client()

    wrong = [
        client.get("/jobs/", headers={"Authorization": f"Bearer wrong-{n}"}).status_code for n in range(3)
    ]

    assert wrong == [401, 401, 429]
    # The key's own budget is untouched by what the address spent before it matched.
    assert client.get("/jobs/", headers={"Authorization": "Bearer alpha"}).status_code == 200


def test_a_route_that_skipped_authentication_still_answers_401_asking_for_a_bearer_key(stack_env, tmp_path):
    app = limited_app(stack_env, tmp_path, API_KEYS="shop:sk-right-key")
    request = app.test_request_context("/jobs/", headers={"Authorization": "Bearer sk-wrong"})
    # What any job route asks first: whose jobs the caller may see.
    with request, pytest.raises(Unauthorized) as refused:
        owner_filter()

    assert refused.value.http_status == 401
    assert refused.value.headers == {"WWW-Authenticate": "Bearer"}
