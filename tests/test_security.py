"""Issue 11's bounded resources, and secrets and files: each test attacks one promise.

Admin pages are attacked in test_dashboard.py, tenants in test_tenants.py, rate limits in
test_client_api.py, hostile bodies in test_fuzz.py, /metrics and /readyz in test_health.py.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor, wait

import pytest

from tests.conftest import fresh_app
from tests.support import submit, wait_for


@pytest.fixture
def unattended_env(stack_env, tmp_path):
    """Settings for an app on an empty database and a queue nobody works: jobs stay pending."""
    return {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/s.sqlite3",
        "QUEUE_NAME": f"unattended-{uuid.uuid4()}",
    }


def waiting(app) -> int:
    """How many long polls wait in this process now (0 before the first one started the listener)."""
    listener = app.extensions.get("jobsvc.notices", {}).get("listener")
    return listener.waiting if listener is not None else 0


def test_past_max_waiters_a_long_poll_is_answered_at_once_with_retry_after(unattended_env):
    app = fresh_app({**unattended_env, "MAX_WAITERS": "1"})
    event_id = submit(app.test_client(), "Wear gloves.")
    poll = f"/jobs/{event_id}/?wait=30"

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(lambda: app.test_client().get(poll))
        wait_for(lambda: waiting(app) == 1, what="the first waiter")
        second = pool.submit(lambda: app.test_client().get(poll))
        wait([second], timeout=15)
        # Ends the first wait (and the second's too, had it been let in to wait).
        app.test_client().post(f"/jobs/{event_id}/cancel")
        first_answer, second_answer = first.result(), second.result()

    assert (second_answer.status_code, second_answer.get_json()["status"]) == (200, "pending")
    assert int(second_answer.headers["Retry-After"]) > 0
    assert first_answer.get_json()["status"] == "canceled"


def test_max_waiters_defaults_to_half_the_web_threads(unattended_env):
    app = fresh_app({**unattended_env, "WEB_THREADS": "8"})
    event_id = submit(app.test_client(), "Wear gloves.")
    app.test_client().get(f"/jobs/{event_id}/?wait=0.01")

    assert app.extensions["jobsvc.notices"]["listener"].max_waiters == 4


def test_a_list_page_with_whole_inputs_stays_under_a_few_mb(unattended_env):
    app = fresh_app(unattended_env)
    client = app.test_client()
    longest = "x" * app.config["MAX_INPUT_CHARS"]
    for _ in range(12):
        client.post("/jobs/", json={"input_text": longest})

    response = client.get("/jobs/?include_input=true&page_size=100")

    assert response.status_code == 200
    assert len(response.get_json()) == 10  # 1,000,000 characters / MAX_INPUT_CHARS=100,000
    assert len(response.data) < 3 * 1024 * 1024
    pages = json.loads(response.headers["X-Pagination"])
    assert (pages["total"], pages["total_pages"], pages["next_page"]) == (12, 2, 2)
    # Without the inputs, the page size asked for is served.
    assert len(client.get("/jobs/?page_size=100").get_json()) == 12
