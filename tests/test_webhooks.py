"""Webhooks: signed deliveries to a local receiver, retries with backoff, and SSRF refusals."""

from __future__ import annotations

import base64
import re
import time
import uuid
from typing import Any

import pytest
from standardwebhooks import Webhook

from jobsvc.core.destinations import check_destination
from jobsvc.errors import UnsafeDestination
from jobsvc.worker.deliveries import NO_ANSWER, sign
from tests.conftest import REPO, fresh_app
from tests.support import wait_for

# During a rotation WEBHOOK_SECRET holds two: the new one (Standard Webhooks form) and the old (raw text).
SECRET = "whsec_" + base64.b64encode(b"the new secret, 24 bytes").decode()
OLD_SECRET = "an old secret of raw text"


@pytest.fixture(scope="module")
def hook_env(e2e_env, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hooks")
    return {
        **e2e_env,
        "DATABASE_URL": f"sqlite:///{folder}/hooks.sqlite3",
        "QUEUE_NAME": "hooks",
        "WEBHOOK_SECRET": f"{SECRET},{OLD_SECRET}",
        "WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on loopback
        "WEBHOOK_RETRY_DELAYS": "1,1",
    }


@pytest.fixture(scope="module")
def hook_client(hook_env, start_worker):
    app = fresh_app(hook_env)
    start_worker(**hook_env)
    return app.test_client()


def verify(delivery: dict[str, Any], secret: str | bytes = SECRET) -> dict[str, Any]:
    """What a receiver does: check the signature with the official Standard Webhooks library."""
    return Webhook(secret).verify(delivery["body"], delivery["headers"])


def submit_with_callback(client, url: str) -> str:
    body = {"input_text": f"Wear gloves {uuid.uuid4()}.", "callback_url": url}
    response = client.post("/jobs/", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["event_id"]


def webhook_state(client, event_id: str, state: str) -> dict[str, Any] | None:
    webhook = client.get(f"/jobs/{event_id}/").get_json()["webhook"]
    return webhook if webhook["state"] == state else None


def test_a_finished_job_is_posted_signed_to_its_callback(hook_client, receiver):
    event_id = submit_with_callback(hook_client, receiver.url)

    webhook = wait_for(lambda: webhook_state(hook_client, event_id, "delivered"), what="delivery")

    (delivery,) = receiver.deliveries
    job = verify(delivery)
    assert (job["id"], job["status"]) == (event_id, "succeeded")
    assert job["checklist"].startswith("- ")
    assert delivery["headers"]["webhook-id"] == f"msg_{event_id}_0"
    assert webhook["attempts"] == 1 and webhook["last_error"] is None


def test_during_a_rotation_each_secret_verifies_the_delivery(hook_client, receiver):
    event_id = submit_with_callback(hook_client, receiver.url)
    wait_for(lambda: webhook_state(hook_client, event_id, "delivered"), what="delivery")

    (delivery,) = receiver.deliveries

    assert len(delivery["headers"]["webhook-signature"].split(" ")) == 2
    assert verify(delivery, SECRET)["id"] == event_id  # whsec_: base64-decoded, per the spec
    assert verify(delivery, OLD_SECRET.encode())["id"] == event_id  # any other: its raw bytes
    with pytest.raises(Exception, match="No matching signature"):
        verify(delivery, b"some other secret")


def test_failed_deliveries_are_retried_with_backoff(hook_client, receiver):
    receiver.statuses.extend([500, 503])
    event_id = submit_with_callback(hook_client, receiver.url)

    webhook = wait_for(lambda: webhook_state(hook_client, event_id, "delivered"), timeout=30, what="delivery")

    assert webhook["attempts"] == 3
    assert len(receiver.deliveries) == 3
    assert all(verify(d)["id"] == event_id for d in receiver.deliveries)
    # One message, retried: the same webhook-id each time, so a receiver can drop repeats.
    assert {d["headers"]["webhook-id"] for d in receiver.deliveries} == {f"msg_{event_id}_0"}


def test_a_callback_that_never_answers_is_given_up_and_says_why(hook_client, receiver):
    receiver.statuses.extend([500] * 5)
    event_id = submit_with_callback(hook_client, receiver.url)

    webhook = wait_for(lambda: webhook_state(hook_client, event_id, "failed"), timeout=30, what="giving up")

    assert webhook["attempts"] == 3
    assert webhook["last_error"] == f"{NO_ANSWER} (HTTP 500)"


def test_a_canceled_job_is_announced_too(hook_client, receiver, fake_llm):
    fake_llm.state.delay = 1.0
    event_id = submit_with_callback(hook_client, receiver.url)
    hook_client.post(f"/jobs/{event_id}/cancel")

    wait_for(lambda: webhook_state(hook_client, event_id, "delivered"), what="delivery")

    assert verify(receiver.deliveries[-1])["status"] == "canceled"


def test_cancel_then_retry_then_success_delivers_once_per_outcome(hook_client, receiver, fake_llm):
    fake_llm.state.delay = 1.0
    event_id = submit_with_callback(hook_client, receiver.url)
    hook_client.post(f"/jobs/{event_id}/cancel")
    wait_for(lambda: webhook_state(hook_client, event_id, "delivered"), what="the canceled delivery")
    fake_llm.state.delay = 0

    assert hook_client.post(f"/jobs/{event_id}/retry").status_code == 200
    wait_for(
        lambda: hook_client.get(f"/jobs/{event_id}/").get_json()["status"] == "succeeded", what="success"
    )
    wait_for(lambda: webhook_state(hook_client, event_id, "delivered"), what="the succeeded delivery")

    assert [verify(d)["status"] for d in receiver.deliveries] == ["canceled", "succeeded"]
    assert [d["headers"]["webhook-id"] for d in receiver.deliveries] == [
        f"msg_{event_id}_0",
        f"msg_{event_id}_1",
    ]


def readme_verifier() -> Any:
    """The receiver code the README's Webhooks section gives, as a function."""
    section = (REPO / "README.md").read_text().split("### Webhooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    return namespace["verify_jobsvc_webhook"]


def test_the_readme_verifier_accepts_a_delivery_and_rejects_a_stale_or_forged_one(hook_client, receiver):
    event_id = submit_with_callback(hook_client, receiver.url)
    wait_for(lambda: webhook_state(hook_client, event_id, "delivered"), what="delivery")
    (delivery,) = receiver.deliveries
    body, headers = delivery["body"], {k.lower(): v for k, v in delivery["headers"].items()}
    is_from_jobsvc = readme_verifier()

    def signed_at(seconds_ago: int) -> dict[str, str]:
        timestamp = int(time.time()) - seconds_ago
        return {
            **headers,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign([SECRET], headers["webhook-id"], timestamp, body),
        }

    assert is_from_jobsvc(body, headers, SECRET)
    assert is_from_jobsvc(body, headers, OLD_SECRET)
    assert is_from_jobsvc(body, signed_at(4 * 60), SECRET)
    assert not is_from_jobsvc(body, signed_at(6 * 60), SECRET)  # a replay, more than 5 minutes off
    assert not is_from_jobsvc(body, signed_at(-6 * 60), SECRET)
    assert not is_from_jobsvc(body.replace(b"succeeded", b"failed"), headers, SECRET)
    assert not is_from_jobsvc(body, headers, "whsec_" + base64.b64encode(b"another").decode())


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/",
        "http://10.0.0.5/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://0.0.0.0/",
    ],
)
def test_private_loopback_and_link_local_destinations_are_refused(url):
    with pytest.raises(UnsafeDestination, match="WEBHOOK_ALLOW_PRIVATE"):
        check_destination(url, allow_private=False)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost"])
def test_only_http_and_https_urls_with_a_host_are_accepted(url):
    with pytest.raises(UnsafeDestination):
        check_destination(url, allow_private=True)


def test_a_public_address_passes_the_check_without_any_request_being_sent():
    check_destination("https://93.184.216.34/hook", allow_private=False)


def test_post_with_a_private_callback_is_422_unless_allowed(stack_env, tmp_path):
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/ssrf.sqlite3", "WEBHOOK_SECRET": SECRET}
    app = fresh_app(env)
    body = {"input_text": "x", "callback_url": "http://127.0.0.1:9/hook"}

    response = app.test_client().post("/jobs/", json=body)

    assert response.status_code == 422
    assert "WEBHOOK_ALLOW_PRIVATE" in response.get_json()["errors"]["json"]["callback_url"][0]


def test_post_with_a_callback_is_422_when_the_server_cannot_sign(app):
    response = app.test_client().post(
        "/jobs/", json={"input_text": "x", "callback_url": "https://93.184.216.34/"}
    )
    assert response.status_code == 422
    assert "WEBHOOK_SECRET" in str(response.get_json()["errors"])
