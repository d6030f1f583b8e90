"""Lease renewal in a worker process: one thread renews every lease its runs hold."""

from __future__ import annotations

import threading
import uuid
from contextlib import ExitStack

from jobsvc.core import store
from jobsvc.worker.tasks import _lease_heartbeat
from tests.support import wait_for


def _lease_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("lease")]


def test_one_thread_renews_the_lease_of_every_run_in_a_process(app):
    with app.app_context():
        ids = [store.create_job(f"Wear gloves {uuid.uuid4()}.")[0].id for _ in range(5)]
        for job_id in ids:
            store.claim_job(job_id, "this-process", 10)
        claimed = {job_id: store.get_job(job_id).lease_expires_at for job_id in ids}

    def all_renewed() -> bool:
        with app.app_context():
            return all(store.get_job(job_id).lease_expires_at > claimed[job_id] for job_id in ids)

    with ExitStack() as runs:
        for job_id in ids:
            runs.enter_context(_lease_heartbeat(app, job_id, "this-process"))
        wait_for(all_renewed, what="every held lease to be renewed")

        assert len(_lease_threads()) == 1
