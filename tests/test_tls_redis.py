"""Redis over TLS (`rediss://`), as Heroku Redis serves it: a self-signed certificate and a password.

A real redis-server (Debian's, built with TLS) listens on TLS only, with `requirepass`; the
certificate is made here with the openssl CLI. Web (gunicorn), worker, rate limiter,
dashboard and the embedded-Redis launcher all take the same `rediss://` URL.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker

from tests.conftest import (
    STARTUP_TIMEOUT,
    GunicornProcess,
    WorkerProcess,
    free_port,
    fresh_app,
    start_embedded,
)
from tests.support import wait_for
from tests.test_wsgi import http

SYSTEM_REDIS = "/usr/bin/redis-server"
PASSWORD = "tls-s3cret-never-logged"


def _make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "redis.crt", folder / "redis.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _no_verify_client(url: str) -> Redis:
    return Redis.from_url(url, ssl_cert_reqs="none", ssl_check_hostname=False)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A TLS-only redis-server with a self-signed certificate and a password; yields its rediss:// URL."""
    if not Path(SYSTEM_REDIS).exists() or shutil.which("openssl") is None:
        pytest.skip(f"needs {SYSTEM_REDIS} (apt-get install redis-server) and the openssl CLI")
    folder = tmp_path_factory.mktemp("tls-redis")
    cert, key = _make_certificate(folder)
    port = free_port()
    process = subprocess.Popen(
        [SYSTEM_REDIS, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
         "--tls-auth-clients", "no", "--requirepass", PASSWORD, "--dir", str(folder),
         "--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"rediss://:{PASSWORD}@127.0.0.1:{port}/0"
    try:
        client = _no_verify_client(url)

        def answers() -> bool:
            if process.poll() is not None:
                return True
            try:
                return bool(client.ping())
            except Exception:
                return False

        wait_for(answers, timeout=10, what="the TLS redis-server")
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            pytest.skip(f"{SYSTEM_REDIS} does not serve TLS here: {output[-300:]}")
        yield url
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def tls_env(stack_env: dict[str, str], tls_redis: str, tmp_path: Path) -> dict[str, str]:
    """The stack's settings on the TLS Redis, with a database and queue of their own."""
    return {
        **stack_env,
        "REDIS_URL": tls_redis,
        "DATABASE_URL": f"sqlite:///{tmp_path}/tls.sqlite3",
        "QUEUE_NAME": f"tls-{uuid.uuid4().hex[:8]}",
    }


def test_with_verification_on_a_self_signed_certificate_is_refused_with_what_to_do(tls_env, tmp_path):
    fresh_app(tls_env)
    worker = WorkerProcess(tls_env, tmp_path / "worker.log")  # REDIS_TLS_VERIFY defaults to true
    try:
        wait_for(
            lambda: "REDIS_TLS_VERIFY=false" in worker.log(),
            timeout=STARTUP_TIMEOUT,
            what="the worker's advice",
        )
    finally:
        worker.kill_group()

    log = worker.log()
    assert "certificate verify failed" in log
    assert PASSWORD not in log


def test_with_verification_off_a_job_succeeds_end_to_end_and_no_log_holds_the_password(
    tls_env, tmp_path, fake_llm
):
    env = {**tls_env, "REDIS_TLS_VERIFY": "false"}
    fresh_app(env)
    client = _no_verify_client(env["REDIS_URL"])
    worker = WorkerProcess(env, tmp_path / "worker.log")
    web = None
    try:
        wait_for(
            lambda: any(env["QUEUE_NAME"] in w.queue_names() for w in Worker.all(connection=client)),
            timeout=STARTUP_TIMEOUT,
            what="the worker to listen on the TLS Redis",
        )
        web = GunicornProcess({**env, "WEB_CONCURRENCY": "1"}, tmp_path / "gunicorn.log")
        text = f"Wear gloves over TLS {uuid.uuid4()}."
        status, created = http("POST", f"{web.url}/jobs/", {"input_text": text})
        assert status == 201, created

        job = wait_for(
            lambda: _finished(http("GET", f"{web.url}/jobs/{created['event_id']}/?wait=10")[1]),
            timeout=60,
            what="the job to finish",
        )
    finally:
        if web is not None:
            web.stop()
        worker.stop()

    assert job["status"] == "succeeded", job
    assert len(fake_llm.state.calls_for(text)) == 2
    for log in (web.log(), worker.log()):
        assert PASSWORD not in log


def _finished(job: dict) -> dict | None:
    return job if job["status"] in {"succeeded", "failed"} else None


def test_the_rate_limiter_counts_in_the_tls_redis(tls_env):
    # The limiter swallows storage errors (serving beats failing), so only a 429 proves it counted.
    env = {**tls_env, "REDIS_TLS_VERIFY": "false", "RATE_LIMIT": "2/minute"}
    client = fresh_app(env).test_client()

    statuses = [client.get("/jobs/").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_the_dashboard_reads_the_tls_redis(tls_env):
    env = {**tls_env, "REDIS_TLS_VERIFY": "false", "ADMIN_PASSWORD": "s3cret"}
    client = fresh_app(env).test_client()
    assert client.post("/jobs/", json={"input_text": "Register the queue."}).status_code == 201

    response = client.get("/rq/0/data/queues.json", auth=("admin", "s3cret"))

    assert response.status_code == 200
    assert env["QUEUE_NAME"] in [queue["name"] for queue in response.get_json()["queues"]]


def test_the_embedded_redis_launcher_passes_a_rediss_url_through_without_printing_it(tls_redis, tmp_path):
    process = start_embedded(tmp_path, REDIS_URL=tls_redis)
    try:
        line = process.stdout.readline().decode()
        assert "not starting the embedded Redis" in line
        assert process.poll() is None
    finally:
        process.terminate()
        output = line + process.communicate(timeout=10)[0].decode()
    assert PASSWORD not in output
    assert not (tmp_path / "redis.sock").exists()
