"""Ingest at the ceiling: concurrent submissions in one process share one transaction and one
Redis pipeline (group commit), and a server without RATE_LIMIT has no Limiter in its request path."""

from __future__ import annotations

import threading
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Queue
from sqlalchemy import select

from jobsvc.core.group_commit import Entry, GroupCommit
from jobsvc.core.models import Job, JobStatus
from jobsvc.extensions import db
from tests.conftest import GunicornProcess, fresh_app
from tests.support import wait_for
from tests.test_wsgi import http

POSTS = 200


def test_entries_handed_in_during_a_flush_share_the_next_flush_and_each_gets_its_own_result():
    batches: list[list[int]] = []
    first_flush_may_end = threading.Event()

    def flush(entries: list[Entry[int]]) -> None:
        batches.append(sorted(entry.item for entry in entries))
        if len(batches) == 1:
            first_flush_may_end.wait(10)
        for entry in entries:
            entry.result = entry.item * 10

    committer = GroupCommit(flush)
    results: dict[int, object] = {}

    def submit(number: int) -> None:
        results[number] = committer.submit(number)

    threads = [threading.Thread(target=submit, args=(0,))]
    threads[0].start()
    wait_for(lambda: batches, what="the first flush to start")
    threads += [threading.Thread(target=submit, args=(n,)) for n in range(1, 10)]
    for thread in threads[1:]:
        thread.start()
    wait_for(lambda: committer.waiting == 9, what="nine entries to wait")
    first_flush_may_end.set()
    for thread in threads:
        thread.join(10)

    assert batches == [[0], list(range(1, 10))]
    assert results == {n: n * 10 for n in range(10)}


def test_a_failed_flush_raises_in_every_caller_of_its_batch_and_the_next_batch_still_runs():
    calls = []

    def flush(entries: list[Entry[str]]) -> None:
        calls.append([entry.item for entry in entries])
        if entries[0].item == "bad":
            raise RuntimeError("database gone")
        for entry in entries:
            entry.result = entry.item.upper()

    committer = GroupCommit(flush)

    with pytest.raises(RuntimeError, match="database gone"):
        committer.submit("bad")
    assert committer.submit("good") == "GOOD"
    assert calls == [["bad"], ["good"]]


def _scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def test_concurrent_posts_to_one_process_share_commits_and_every_201_is_committed_and_queued_once(
    stack_env, tmp_path
):
    queue_name = f"group-{uuid.uuid4()}"
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/group.sqlite3", "QUEUE_NAME": queue_name}
    app = fresh_app(env)
    web = GunicornProcess({**env, "WEB_CONCURRENCY": "1"}, tmp_path / "gunicorn.log")
    texts = [f"Check the fire exits, post {n}." for n in range(POSTS)]

    def post_then_read(text: str) -> tuple[int, str, int, str]:
        status, created = http("POST", f"{web.url}/jobs/", {"input_text": text})
        # Another connection reads the job the moment the 201 arrives: it must be committed.
        read_status, job = http("GET", f"{web.url}/jobs/{created['event_id']}/")
        return status, created["event_id"], read_status, job["status"]

    try:
        with ThreadPoolExecutor(max_workers=64) as pool:
            answers = list(pool.map(post_then_read, texts))
        metrics = _scrape(web.url)
    finally:
        web.stop()

    assert {(status, read, job_status) for status, _, read, job_status in answers} == {(201, 200, "pending")}
    ids = [event_id for _, event_id, _, _ in answers]
    with app.app_context():
        rows = dict(db.session.execute(select(Job.id, Job.input_text)).all())
        assert rows == dict(zip(ids, texts, strict=True))
        assert set(db.session.scalars(select(Job.status))) == {JobStatus.PENDING}
    queued = Queue(queue_name, connection=Redis.from_url(env["REDIS_URL"])).job_ids
    assert sorted(queued) == sorted(ids)
    assert metrics["jobsvc_jobs_created_total"] == POSTS
    assert 1 <= metrics["jobsvc_ingest_commits_total"] < POSTS


def test_without_rate_limit_no_limiter_is_installed(stack_env, tmp_path):
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/nolimit.sqlite3"}

    assert "limiter" not in fresh_app(env).extensions
    assert fresh_app(env, RATE_LIMIT="5/minute").extensions["limiter"]
