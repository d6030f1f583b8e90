"""/metrics: Prometheus text, counted across web and worker processes through Redis."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rq.timeouts import JobTimeoutException

from jobsvc.core import store
from jobsvc.core.models import JobStatus
from jobsvc.worker.tasks import run_job
from tests.conftest import GunicornProcess, fresh_app
from tests.support import wait_for
from tests.test_wsgi import http


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def test_metrics_add_up_with_two_web_processes_and_two_workers_running(
    e2e_env, start_worker, tmp_path, fake_llm
):
    env = {
        **e2e_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/m.sqlite3",
        "QUEUE_NAME": f"metrics-{uuid.uuid4()}",
    }
    app = fresh_app(env)
    client = app.test_client()
    workers = [start_worker(**env), start_worker(**env)]
    web = GunicornProcess({**env, "WEB_CONCURRENCY": "2"}, tmp_path / "gunicorn.log")
    try:
        fail = f"Fail me {uuid.uuid4()}."
        fake_llm.state.fail_next(401, matching=fail)
        texts = [f"Lock the door {n} {uuid.uuid4()}." for n in range(6)] + [fail]
        for text in texts:  # through gunicorn's two processes
            assert http("POST", f"{web.url}/jobs/", {"input_text": text})[0] == 201

        def settled():
            metrics = scrape(client)
            finished = sum(v for (name, _), v in metrics.items() if name == "jobsvc_jobs_finished_total")
            # RQ takes a run off its started registry just after the run has counted itself.
            running = metrics[("jobsvc_jobs_running", ())]
            return metrics if finished == len(texts) and running == 0 else None

        metrics = wait_for(settled, timeout=60, what="every job to be counted")
    finally:
        web.stop()
        for worker in workers:
            worker.stop()

    assert metrics[("jobsvc_jobs_created_total", ())] == 7
    assert metrics[("jobsvc_jobs_finished_total", (("status", "succeeded"),))] == 6
    assert metrics[("jobsvc_jobs_finished_total", (("status", "failed"),))] == 1
    assert metrics[("jobsvc_job_duration_seconds_count", ())] == 7
    assert metrics[("jobsvc_llm_call_seconds_count", (("step", "summarize"),))] == 7
    assert metrics[("jobsvc_llm_call_seconds_count", (("step", "checklist"),))] == 6
    assert metrics[("jobsvc_llm_errors_total", (("kind", "LLMPermanentError"),))] == 1
    assert metrics[("jobsvc_llm_tokens_total", (("kind", "prompt"),))] == 6 * 2 * 40
    assert metrics[("jobsvc_queue_depth", ())] == 0
    assert metrics[("jobsvc_jobs_running", ())] == 0


def test_metrics_say_so_in_redis_up_when_redis_is_down(stack_env, tmp_path):
    app = fresh_app(
        {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "REDIS_URL": "redis://127.0.0.1:9"}
    )
    metrics = scrape(app.test_client())

    assert metrics[("jobsvc_redis_up", ())] == 0
    assert ("jobsvc_jobs_finished_total", (("status", "failed"),)) not in metrics  # no made-up zeros


class _Raising:
    """A provider whose call ends the run with `error`, as a bug or RQ's job timeout would."""

    name, model = "raising", "v0"

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def summarize(self, text: str) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [KeyError("a bug"), JobTimeoutException("Task exceeded maximum timeout value (1 seconds)")],
    ids=["crash", "job-timeout"],
)
def test_a_run_that_crashes_or_times_out_is_counted_as_failed_with_its_duration(app, client, error):
    failed = ("jobsvc_jobs_finished_total", (("status", "failed"),))
    durations = ("jobsvc_job_duration_seconds_count", ())
    before = scrape(client)
    with app.app_context():
        job_id = store.create_job(f"Wear gloves {uuid.uuid4()}.")[0].id
        app.extensions["jobsvc.llm"] = {"provider": _Raising(error)}
        try:
            with pytest.raises(type(error)):
                run_job(job_id)
        finally:
            app.extensions.pop("jobsvc.llm")
        assert store.get_job(job_id).status is JobStatus.FAILED

    after = scrape(client)

    assert after[failed] == before[failed] + 1
    assert after[durations] == before[durations] + 1
