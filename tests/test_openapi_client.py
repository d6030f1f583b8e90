"""Client developers: stable operationIds, examples, and a client generated from the live document."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import GunicornProcess
from tests.support import wait_for

OPERATION_IDS = {
    ("post", "/jobs/"): "submitJob",
    ("post", "/jobs/batch"): "submitJobs",
    ("get", "/jobs/"): "listJobs",
    ("get", "/jobs/{event_id}/"): "getJob",
    ("post", "/jobs/{event_id}/cancel"): "cancelJob",
    ("post", "/jobs/{event_id}/retry"): "retryJob",
    ("get", "/healthz"): "checkLiveness",
    ("get", "/readyz"): "checkReadiness",
}
CLIENT_PACKAGE = "jobsvc_generated_client"


def operations(spec: dict) -> dict[tuple[str, str], dict]:
    return {
        (method, path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_every_operation_has_its_stable_operation_id(client):
    spec = client.get("/openapi.json").get_json()

    found = {key: operation.get("operationId") for key, operation in operations(spec).items()}

    assert found == OPERATION_IDS


def test_the_submit_body_and_every_success_answer_have_a_realistic_example(client):
    spec = client.get("/openapi.json").get_json()
    submit = operations(spec)[("post", "/jobs/")]

    request_example = submit["requestBody"]["content"]["application/json"]["example"]
    assert request_example["input_text"].strip()
    for key, operation in operations(spec).items():
        for code, response in operation["responses"].items():
            if code.startswith("2"):
                assert "example" in response["content"]["application/json"], (key, code)
    job_example = operations(spec)[("get", "/jobs/{event_id}/")]["responses"]["200"]["content"][
        "application/json"
    ]["example"]
    assert job_example["status"] == "succeeded" and job_example["checklist"].startswith("- ")


@pytest.fixture
def gunicorn(e2e_app, e2e_env, tmp_path):
    server = GunicornProcess({**e2e_env, "WEB_CONCURRENCY": "1"}, tmp_path / "gunicorn.log")
    yield server
    server.stop()


@pytest.fixture
def generated_client(gunicorn, tmp_path):
    """A client package made by openapi-python-client from the live /openapi.json, imported."""
    output = tmp_path / CLIENT_PACKAGE
    # The generator formats its output with ruff, which lives next to this interpreter.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    command = [sys.executable, "-m", "openapi_python_client", "generate"]
    command += ["--url", f"{gunicorn.url}/openapi.json", "--meta", "none", "--output-path", str(output)]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PATH": path},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(CLIENT_PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.split(".")[0] == CLIENT_PACKAGE]:
            del sys.modules[name]


def test_a_generated_client_submits_polls_and_lists_jobs(generated_client, gunicorn, worker):
    jobs = importlib.import_module(f"{CLIENT_PACKAGE}.api.jobs")
    submit_job, get_job, list_jobs = (
        importlib.import_module(f"{jobs.__name__}.{name}") for name in ("submit_job", "get_job", "list_jobs")
    )
    models = importlib.import_module(f"{CLIENT_PACKAGE}.models")
    client = generated_client.Client(base_url=gunicorn.url, raise_on_unexpected_status=True)
    text = f"Wear gloves when you handle raw meat. Sample {uuid.uuid4()}."

    created = submit_job.sync(client=client, body=models.JobCreate(input_text=text))

    def finished():
        job = get_job.sync(client=client, event_id=created.event_id, wait=25)
        return job if job.status.value in {"succeeded", "failed", "canceled"} else None

    job = wait_for(finished, timeout=60, what="the job, through the generated client")
    listed = list_jobs.sync(client=client, status=models.ListJobsStatus.SUCCEEDED, page_size=50)

    assert job.status.value == "succeeded" and job.checklist.startswith("- ")
    assert created.event_id in [item.id for item in listed]
