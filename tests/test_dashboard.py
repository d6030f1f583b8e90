"""The RQ dashboard at /rq: the app's Redis, basic auth both ways, and many apps per process."""

from __future__ import annotations

import base64

import pytest
import rq_dashboard

from tests.conftest import fresh_app
from tests.support import submit, wait_for_job

OUTSIDER = {"REMOTE_ADDR": "203.0.113.7"}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def locked(e2e_env, tmp_path):
    env = {**e2e_env, "DATABASE_URL": f"sqlite:///{tmp_path}/d.sqlite3", "ADMIN_PASSWORD": "s3cret"}
    return fresh_app(env).test_client()


def test_without_a_password_only_loopback_gets_in(e2e_client):
    assert e2e_client.get("/rq/").status_code == 200
    response = e2e_client.get("/rq/", environ_base=OUTSIDER)
    assert response.status_code == 403
    assert "ADMIN_PASSWORD" in response.get_json()["message"]


@pytest.mark.parametrize("headers", [{}, basic("admin", "wrong"), basic("root", "s3cret")])
def test_with_a_password_wrong_or_missing_credentials_are_401(locked, headers):
    response = locked.get("/rq/", headers=headers, environ_base=OUTSIDER)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_with_a_password_the_right_credentials_get_in_from_anywhere(locked):
    assert locked.get("/rq/", headers=basic("admin", "s3cret"), environ_base=OUTSIDER).status_code == 200


def test_the_dashboard_shows_the_apps_queue_and_its_live_worker(e2e_client, e2e_env, worker):
    wait_for_job(e2e_client, submit(e2e_client, "Wear gloves."))  # RQ registers a queue on first use

    queues = e2e_client.get("/rq/0/data/queues.json").get_json()["queues"]
    workers = e2e_client.get("/rq/0/data/workers.json").get_json()["workers"]

    assert e2e_env["QUEUE_NAME"] in [queue["name"] for queue in queues]
    assert any(e2e_env["QUEUE_NAME"] in w["queues"] for w in workers)


def test_many_apps_leave_the_shared_blueprint_untouched(stack_env, tmp_path):
    hooks_before = {key: len(funcs) for key, funcs in rq_dashboard.blueprint.before_request_funcs.items()}
    apps = [fresh_app({**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/{n}.sqlite3"}) for n in range(3)]

    assert all(app.test_client().get("/rq/").status_code == 200 for app in apps)
    hooks_after = {key: len(funcs) for key, funcs in rq_dashboard.blueprint.before_request_funcs.items()}
    assert hooks_after == hooks_before
