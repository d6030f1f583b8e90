"""The admin pages (/rq, and /admin by prefix): who gets in, which actions count, no framing.

Each test attacks the guard the way issue 11.1 describes: a proxy on the same host, a
forged forwarding header, a DNS-rebound Host, a cross-site form or image, a frame.
"""

from __future__ import annotations

import base64
import subprocess
import uuid

import pytest
import rq_dashboard
from redis import Redis
from rq import Queue
from rq.job import Job as RQJob

from jobsvc.embedded_redis import redis_server_binary, server_arguments
from tests.conftest import fresh_app
from tests.support import submit, wait_for, wait_for_job

OUTSIDER = {"REMOTE_ADDR": "203.0.113.7"}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADMIN = basic("admin", "s3cret")


@pytest.fixture
def locked(e2e_env, tmp_path):
    env = {**e2e_env, "DATABASE_URL": f"sqlite:///{tmp_path}/d.sqlite3", "ADMIN_PASSWORD": "s3cret"}
    return fresh_app(env).test_client()


def make_run_app(stack_env, tmp_path, **settings: str):
    """The zero-configuration `make run`: loopback bind, no proxy, the embedded Redis (not started here)."""
    env = {k: v for k, v in stack_env.items() if k != "REDIS_URL"}
    env |= {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/laptop.sqlite3"}
    return fresh_app({**env, **settings})


@pytest.fixture
def laptop(stack_env, tmp_path):
    return make_run_app(stack_env, tmp_path).test_client()


@pytest.fixture
def embedded_redis(tmp_path):
    """The embedded Redis as `make run` starts it, on the instance folder's unix socket."""
    socket = tmp_path / "redis.sock"
    arguments = server_arguments(tmp_path, socket=socket)
    server = subprocess.Popen([str(redis_server_binary()), *arguments], stdout=subprocess.DEVNULL)
    try:
        wait_for(socket.exists, timeout=30, what="the embedded Redis socket")
        yield
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_make_run_without_a_password_answers_its_own_machine(laptop, embedded_redis):
    response = laptop.get("/rq/")
    assert response.status_code == 200
    assert b"rq-dashboard" in response.data.lower()


def test_without_a_password_a_configured_deployment_refuses_even_loopback(e2e_client):
    # REDIS_URL is set: not the zero-configuration `make run`, so a same-host proxy could be in front.
    response = e2e_client.get("/rq/")
    assert response.status_code == 403
    assert "ADMIN_PASSWORD" in response.get_json()["message"]


@pytest.mark.parametrize("settings", [{"HOST": "0.0.0.0"}, {"PROXY_FIX": "1"}])
def test_without_a_password_a_public_bind_or_a_trusted_proxy_refuses_loopback(stack_env, tmp_path, settings):
    client = make_run_app(stack_env, tmp_path, SECRET_KEY="k" * 40, **settings).test_client()
    assert client.get("/rq/").status_code == 403
    forged = client.get("/rq/", headers={"X-Forwarded-For": "127.0.0.1"}, environ_base=OUTSIDER)
    assert forged.status_code == 403


@pytest.mark.parametrize(
    ("headers", "environ", "says"),
    [
        ({}, OUTSIDER, "this machine"),
        ({"X-Forwarded-For": "127.0.0.1"}, {}, "proxy"),
        ({"X-Forwarded-For": "203.0.113.7"}, {}, "proxy"),
        ({"Forwarded": "for=203.0.113.7"}, {}, "proxy"),
        ({"X-Real-IP": "203.0.113.7"}, {}, "proxy"),
        ({"Host": "attacker.example"}, {}, "Host"),
        ({"Host": "attacker.example:8000"}, {}, "Host"),
        ({"Host": "127.0.0.1.nip.io"}, {}, "Host"),
    ],
)
def test_make_run_refuses_outsiders_proxied_requests_and_rebound_hosts(laptop, headers, environ, says):
    response = laptop.get("/rq/", headers=headers, environ_base=environ)
    assert response.status_code == 403
    assert says in response.get_json()["message"]


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000"])
def test_make_run_answers_the_local_host_names_with_a_port(laptop, host):
    assert laptop.get("/rq/", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("headers", [{}, basic("admin", "wrong"), basic("root", "s3cret")])
def test_with_a_password_wrong_or_missing_credentials_are_401(locked, headers):
    response = locked.get("/rq/", headers=headers, environ_base=OUTSIDER)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_with_a_password_the_right_credentials_get_in_from_anywhere(locked):
    assert locked.get("/rq/", headers=ADMIN, environ_base=OUTSIDER).status_code == 200


def test_every_admin_prefix_is_guarded_even_where_nothing_is_mounted(locked, e2e_client):
    assert locked.get("/admin/", environ_base=OUTSIDER).status_code == 401
    assert locked.get("/admin/job/delete/", environ_base=OUTSIDER).status_code == 401
    assert e2e_client.get("/admin/").status_code == 403
    # A prefix match, not a substring one: /administrator is not an admin page.
    assert locked.get("/administrator", environ_base=OUTSIDER).status_code == 404


@pytest.fixture
def rq_job(e2e_app):
    """A job in Redis on a queue of its own, for the dashboard's delete and requeue actions to act on."""
    redis = Redis.from_url(e2e_app.config["REDIS_URL"])
    queue = Queue(f"guard-{uuid.uuid4()}", connection=redis)
    job = queue.enqueue("builtins.print", "x")
    yield queue, job
    queue.delete(delete_jobs=True)


CROSS_SITE = [
    {},  # neither header: a very old browser, or a script that did not say where it came from
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://attacker.example"},
    {"Origin": "null"},
]


@pytest.mark.parametrize("origin", CROSS_SITE)
def test_a_cross_site_delete_is_refused_and_the_job_stays(locked, rq_job, origin):
    queue, job = rq_job
    response = locked.post(f"/rq/job/{job.id}/delete", headers={**ADMIN, **origin})

    assert response.status_code == 403
    assert "same-origin" in response.get_json()["message"]
    assert RQJob.exists(job.id, connection=queue.connection)


@pytest.mark.parametrize("origin", [SAME_ORIGIN, {"Origin": "http://localhost"}])
def test_a_same_origin_delete_goes_through(locked, rq_job, origin):
    queue, job = rq_job
    response = locked.post(f"/rq/job/{job.id}/delete", headers={**ADMIN, **origin})

    assert response.status_code == 200, response.data
    assert not RQJob.exists(job.id, connection=queue.connection)


@pytest.mark.parametrize("origin", CROSS_SITE)
def test_a_cross_site_empty_of_a_queue_is_refused_and_the_queue_keeps_its_job(locked, rq_job, origin):
    queue, _ = rq_job
    response = locked.post(f"/rq/queue/{queue.name}/queued/empty", headers={**ADMIN, **origin})

    assert response.status_code == 403
    assert queue.count == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("origin", CROSS_SITE)
def test_requeue_all_is_an_action_even_as_a_get(locked, rq_job, method, origin):
    queue, _ = rq_job
    # An <img src> on another site would send this GET with the browser's cached credentials.
    response = locked.open(f"/rq/requeue/{queue.name}", method=method, headers={**ADMIN, **origin})
    assert response.status_code == 403


def test_requeue_all_from_the_dashboard_itself_goes_through(locked, rq_job):
    queue, _ = rq_job
    response = locked.get(f"/rq/requeue/{queue.name}", headers={**ADMIN, **SAME_ORIGIN})
    assert (response.status_code, response.get_json()["status"]) == (200, "OK")


def test_make_run_also_refuses_a_cross_site_action(laptop):
    response = laptop.post(f"/rq/job/{uuid.uuid4()}/delete", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/rq/", ADMIN), ("/rq/", {}), ("/rq/0/data/queues.json", ADMIN), ("/admin/", {})],
)
def test_admin_answers_forbid_framing(locked, path, headers):
    response = locked.get(path, headers=headers, environ_base=OUTSIDER)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_api_is_not_affected_by_the_admin_headers(locked):
    assert "X-Frame-Options" not in locked.get("/jobs/").headers


def test_the_dashboard_shows_the_apps_queue_and_its_live_worker(locked, e2e_client, e2e_env, worker):
    wait_for_job(e2e_client, submit(e2e_client, "Wear gloves."))  # RQ registers a queue on first use

    queues = locked.get("/rq/0/data/queues.json", headers=ADMIN).get_json()["queues"]
    workers = locked.get("/rq/0/data/workers.json", headers=ADMIN).get_json()["workers"]

    assert e2e_env["QUEUE_NAME"] in [queue["name"] for queue in queues]
    assert any(e2e_env["QUEUE_NAME"] in w["queues"] for w in workers)


def test_many_apps_leave_the_shared_blueprint_untouched(stack_env, tmp_path):
    hooks_before = {key: len(funcs) for key, funcs in rq_dashboard.blueprint.before_request_funcs.items()}
    env = {**stack_env, "ADMIN_PASSWORD": "s3cret"}
    apps = [fresh_app({**env, "DATABASE_URL": f"sqlite:///{tmp_path}/{n}.sqlite3"}) for n in range(3)]

    assert all(app.test_client().get("/rq/", headers=ADMIN).status_code == 200 for app in apps)
    hooks_after = {key: len(funcs) for key, funcs in rq_dashboard.blueprint.before_request_funcs.items()}
    assert hooks_after == hooks_before


def guarded_app(e2e_env, tmp_path, **settings: str):
    """An app with ADMIN_PASSWORD, a failure budget of its own (a fresh queue name), and `settings`."""
    env = {
        **e2e_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/g.sqlite3",
        "QUEUE_NAME": f"guarded-{uuid.uuid4()}",
        "ADMIN_PASSWORD": "s3cret",
        **settings,
    }
    return fresh_app(env)


def test_admin_password_guesses_get_auth_failure_limit_then_429_even_the_right_one(e2e_env, tmp_path):
    client = guarded_app(e2e_env, tmp_path, AUTH_FAILURE_LIMIT="3/minute").test_client()
    guesses = [
        client.get("/rq/", headers=basic("admin", f"guess-{n}"), environ_base=OUTSIDER).status_code
        for n in range(3)
    ]

    right = client.get("/admin/", headers=ADMIN, environ_base=OUTSIDER)
    from_elsewhere = client.get("/rq/", headers=ADMIN, environ_base={"REMOTE_ADDR": "198.51.100.4"})

    assert guesses == [401, 401, 401]
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
    assert from_elsewhere.status_code == 200


def test_a_browser_asked_for_admin_credentials_spends_no_failure_budget(e2e_env, tmp_path):
    client = guarded_app(e2e_env, tmp_path, AUTH_FAILURE_LIMIT="2/minute").test_client()
    challenges = [client.get("/rq/", environ_base=OUTSIDER).status_code for _ in range(5)]

    assert challenges == [401] * 5
    assert client.get("/rq/", headers=ADMIN, environ_base=OUTSIDER).status_code == 200
