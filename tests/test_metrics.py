"""/metrics: Prometheus text, counted across web and worker processes through Redis."""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families

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


def test_metrics_count_across_two_web_processes_and_two_workers(e2e_env, start_worker, tmp_path, fake_llm):
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
            return metrics if finished == len(texts) else None

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


def test_metrics_say_redis_is_down_as_a_gauge_rather_than_failing_the_scrape(stack_env, tmp_path):
    app = fresh_app(
        {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "REDIS_URL": "redis://127.0.0.1:9"}
    )
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert "jobsvc_redis_up 0.0" in response.text
    assert "jobsvc_workers_alive 0.0" in response.text
