"""The `jobs` command group against a live stack: real Redis, a real worker, the fake LLM."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from sqlalchemy import update

from jobsvc.config import read_settings
from jobsvc.core import store
from jobsvc.core.database import write_transaction
from jobsvc.core.models import Job, utcnow
from tests.conftest import fresh_app
from tests.support import submit, wait_for_job


def read_api_keys(raw: str):
    """API_KEYS parsed as the environment would be."""
    return read_settings({"API_KEYS": raw}, env_file=None)["API_KEYS"]


def run(app, *args: str):
    """`flask jobs ARGS...` in-process, against the app's database and Redis."""
    return app.test_cli_runner().invoke(args=["jobs", *args])


def test_submit_and_wait_prints_summary_and_checklist(e2e_app, worker):
    text = f"Lock the door {uuid.uuid4()}."
    result = run(e2e_app, "submit", text, "--wait", "--timeout", "30")

    assert result.exit_code == 0, result.output
    event_id = result.output.splitlines()[0]
    assert str(uuid.UUID(event_id)) == event_id
    assert "succeeded" in result.output  # the progress lines
    assert f"SUMMARY OF {text}" in result.output and "Checklist:\n- " in result.output


def test_submit_from_a_file(e2e_app, worker, tmp_path):
    document = tmp_path / "guide.txt"
    document.write_text("Wear gloves. Wash your hands.", encoding="utf-8")

    result = run(e2e_app, "submit", "--file", str(document))

    assert result.exit_code == 0
    with e2e_app.app_context():
        assert store.get_job(result.output.strip()).input_text == "Wear gloves. Wash your hands."


def test_submit_needs_text_or_a_file_but_not_both(e2e_app, tmp_path):
    (tmp_path / "f.txt").write_text("x")
    assert run(e2e_app, "submit").exit_code == 2
    assert run(e2e_app, "submit", "text", "--file", str(tmp_path / "f.txt")).exit_code == 2
    assert run(e2e_app, "submit", "   ").exit_code == 2


def test_a_failed_job_waited_for_exits_1_with_its_error(e2e_app, worker, fake_llm):
    text = f"Lock the door {uuid.uuid4()}."
    fake_llm.state.fail_next(401, matching=text)

    result = run(e2e_app, "submit", text, "--wait")

    assert result.exit_code == 1
    assert "OPENAI_API_KEY" in result.output


def test_show_list_cancel_and_retry(e2e_app, e2e_client, worker):
    event_id = submit(e2e_client, f"Wear gloves {uuid.uuid4()}.")
    wait_for_job(e2e_client, event_id)

    shown = run(e2e_app, "show", event_id.upper())
    assert shown.exit_code == 0 and json.loads(shown.output)["status"] == "succeeded"
    listed = run(e2e_app, "list", "--status", "succeeded", "--limit", "500")
    assert event_id in listed.output
    assert run(e2e_app, "cancel", event_id).exit_code == 1
    assert run(e2e_app, "retry", event_id).exit_code == 1
    missing = run(e2e_app, "show", str(uuid.uuid4()))
    assert missing.exit_code == 1 and "No job" in missing.output


def test_purge_deletes_only_old_finished_jobs(stack_env, tmp_path):
    # A database and a queue no worker serves: the pending job stays pending throughout.
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/purge.sqlite3", "QUEUE_NAME": "cli-purge"}
    app = fresh_app(env)
    with app.app_context():
        old = store.create_job(f"Old {uuid.uuid4()}.")[0].id
        assert store.cancel_job(old)  # finished, without a worker
        pending_old = store.create_job(f"Pending {uuid.uuid4()}.")[0].id
    with app.app_context(), write_transaction() as session:
        long_ago = utcnow() - timedelta(days=40)
        session.execute(update(Job).where(Job.id.in_([old, pending_old])).values(finished_at=long_ago))

    assert "nothing deleted" in run(app, "purge", "--older-than", "30d", "--dry-run").output
    result = run(app, "purge", "--older-than", "30d")

    assert result.exit_code == 0 and "Deleted" in result.output
    with app.app_context():
        assert store.get_job(old) is None
        assert store.get_job(pending_old) is not None  # unfinished jobs are never purged
    assert run(app, "purge", "--older-than", "soon").exit_code == 2


def test_with_api_keys_submit_needs_a_client_and_the_job_belongs_to_that_key(stack_env, tmp_path):
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/keys.sqlite3", "QUEUE_NAME": "cli-keys"}
    app = fresh_app(env, API_KEYS=read_api_keys("shop:k-shop-123,crm:k-crm-456"))

    refused = run(app, "submit", "Wear gloves.")
    accepted = run(app, "submit", "--client", "shop", "Wear gloves.")

    assert refused.exit_code == 2 and "--client crm | shop" in refused.output.replace(
        "shop | crm", "crm | shop"
    )
    event_id = accepted.output.strip()
    shop = {"Authorization": "Bearer k-shop-123"}
    crm = {"Authorization": "Bearer k-crm-456"}
    assert app.test_client().get(f"/jobs/{event_id}/", headers=shop).status_code == 200
    assert app.test_client().get(f"/jobs/{event_id}/", headers=crm).status_code == 404


def test_submit_refuses_text_over_max_input_chars_and_creates_nothing(stack_env, tmp_path):
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/long.sqlite3", "QUEUE_NAME": "cli-long"}
    app = fresh_app(env, MAX_INPUT_CHARS=10)

    result = run(app, "submit", "Wear gloves and a hairnet.")

    assert result.exit_code == 2 and "the limit is 10" in result.output
    with app.app_context():
        assert store.list_jobs()[1] == 0


def test_reconcile_with_redis_away_exits_1_saying_so(stack_env, tmp_path):
    env = {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/away.sqlite3",
        "REDIS_URL": "redis://127.0.0.1:9",
    }
    app = fresh_app(env)
    submit(app.test_client(), "Wear gloves.")  # accepted, pending: the reconciler must ask Redis

    result = run(app, "reconcile", "--min-age", "0")

    assert result.exit_code == 1
    assert "Redis did not answer" in result.output and "Traceback" not in result.output
