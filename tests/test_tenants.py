"""Tenants: with API_KEYS set, a job belongs to the key that created it, and keys have names."""

from __future__ import annotations

import hashlib
import json
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobsvc.config import read_settings
from jobsvc.core import store
from jobsvc.errors import ConfigError
from tests.conftest import GunicornProcess, fresh_app
from tests.support import wait_for

SHOP_SECRET, CRM_SECRET = "sk-shop-4f9a2c", "sk-crm-77d01e"
SHOP = {"Authorization": f"Bearer {SHOP_SECRET}"}
CRM = {"Authorization": f"Bearer {CRM_SECRET}"}


@pytest.fixture
def env(stack_env, tmp_path):
    return {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/tenants.sqlite3",
        "QUEUE_NAME": f"tenants-{uuid.uuid4()}",  # nobody works it; its metrics start at zero
        "API_KEYS": f"shop:{SHOP_SECRET}, crm:{CRM_SECRET}",
    }


@pytest.fixture
def tenants_app(env):
    return fresh_app(env)


def post(client, headers, text="Wear gloves.", **extra_headers):
    response = client.post("/jobs/", json={"input_text": text}, headers={**headers, **extra_headers})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["event_id"]


def test_another_key_gets_404_for_a_job_on_get_wait_cancel_and_retry(tenants_app):
    client = tenants_app.test_client()
    event_id = post(client, SHOP)

    for method, path in [
        ("GET", f"/jobs/{event_id}/"),
        ("GET", f"/jobs/{event_id}/?wait=5"),
        ("POST", f"/jobs/{event_id}/cancel"),
        ("POST", f"/jobs/{event_id}/retry"),
    ]:
        response = client.open(path, method=method, headers=CRM)
        assert response.status_code == 404, (method, path)
        assert response.get_json()["message"] == f"No job has event id {event_id}."
    # Nothing happened to it: it is still pending for its owner.
    assert client.get(f"/jobs/{event_id}/", headers=SHOP).get_json()["status"] == "pending"


def test_a_key_lists_only_its_own_jobs(tenants_app):
    client = tenants_app.test_client()
    shop_jobs = {post(client, SHOP, f"Shop job {n}.") for n in range(2)}
    crm_job = post(client, CRM, "CRM job.")

    shop_list = client.get("/jobs/", headers=SHOP)
    crm_list = client.get("/jobs/?status=pending", headers=CRM)

    assert {job["id"] for job in shop_list.get_json()} == shop_jobs
    assert '"total": 2' in shop_list.headers["X-Pagination"]
    assert [job["id"] for job in crm_list.get_json()] == [crm_job]


def test_idempotency_keys_are_scoped_per_api_key(tenants_app):
    client = tenants_app.test_client()
    key = {"Idempotency-Key": "order-1"}

    shop_first = post(client, SHOP, "Shop's document.", **key)
    crm_first = post(client, CRM, "CRM's other document.", **key)  # no 409: another client's key
    shop_again = post(client, SHOP, "Shop's document.", **key)

    assert crm_first != shop_first
    assert shop_again == shop_first


def test_the_admin_sees_every_job(tenants_app):
    client = tenants_app.test_client()
    ids = {post(client, SHOP), post(client, CRM)}

    with tenants_app.app_context():
        jobs, total = store.list_jobs(owner=None)
        assert {job.id for job in jobs} == ids and total == 2
        assert all(store.get_job(event_id) is not None for event_id in ids)
        assert {store.get_job(event_id).owner for event_id in ids} == {"shop", "crm"}


def test_a_bare_key_still_works_and_is_named_by_its_hash(stack_env, tmp_path):
    app = fresh_app({**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/bare.sqlite3", "API_KEYS": "plain"})
    event_id = post(app.test_client(), {"Authorization": "Bearer plain"})

    with app.app_context():
        assert store.get_job(event_id).owner == "key-" + hashlib.sha256(b"plain").hexdigest()[:6]


def call(method: str, url: str, headers: dict[str, str], body: dict | None = None) -> tuple[int, dict]:
    """One JSON request over real HTTP; returns the status and the decoded body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **headers}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_the_web_log_says_which_client_submitted_and_canceled_without_printing_a_key(
    tenants_app, env, tmp_path
):
    web = GunicornProcess({**env, "WEB_CONCURRENCY": "1"}, tmp_path / "gunicorn.log")
    try:
        event_id = call("POST", f"{web.url}/jobs/", SHOP, {"input_text": "Wear gloves."})[1]["event_id"]
        call("POST", f"{web.url}/jobs/{event_id}/cancel", SHOP)
        wait_for(lambda: "status=canceled" in web.log(), what="the cancel to be logged")
    finally:
        web.stop()

    log = web.log()
    assert f"job {event_id} status=pending attempt=0 client=shop" in log
    assert f"job {event_id} status=canceled attempt=0 client=shop" in log
    assert SHOP_SECRET not in log and CRM_SECRET not in log


def test_metrics_count_jobs_per_client_name(tenants_app):
    client = tenants_app.test_client()
    for headers in (SHOP, SHOP, CRM):
        post(client, headers)

    text = client.get("/metrics").get_data(as_text=True)
    samples = {
        (sample.name, tuple(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("jobsvc_client_jobs_created_total", (("client", "shop"),))] == 2
    assert samples[("jobsvc_client_jobs_created_total", (("client", "crm"),))] == 1
    assert SHOP_SECRET not in text


def test_named_keys_are_read_from_the_setting():
    keys = read_settings({"API_KEYS": "shop:k1, crm:k2,bare"}, env_file=None)["API_KEYS"]
    assert [(key.name, key.secret) for key in keys] == [
        ("shop", "k1"),
        ("crm", "k2"),
        ("key-" + hashlib.sha256(b"bare").hexdigest()[:6], "bare"),
    ]
    assert "k1" not in repr(keys)


@pytest.mark.parametrize(
    "value", ["shop:s3cr3t-a,shop:s3cr3t-b", "bad name:s3cr3t-a", "shop:", "a:s3cr3t-a,b:s3cr3t-a"]
)
def test_unusable_api_keys_are_refused_without_echoing_a_secret(value):
    with pytest.raises(ConfigError) as refused:
        read_settings({"API_KEYS": value}, env_file=None)
    assert "API_KEYS" in str(refused.value)
    assert "s3cr3t" not in str(refused.value)
