"""checklist_items: the checklist as a JSON array, from structured outputs or the parsed markdown."""

from __future__ import annotations

import json
import uuid

import pytest
from flask import Flask

from jobsvc.core import store
from jobsvc.llm import create_provider, prompts
from jobsvc.llm.openai_provider import OpenAIProvider
from jobsvc.worker.tasks import run_job
from tests.conftest import fresh_app
from tests.fake_openai import checklist_items

KEY = "sk-test-do-not-leak-123"


@pytest.fixture(scope="module")
def structured_app(stack_env: dict[str, str]) -> Flask:
    """The stack's app with OPENAI_STRUCTURED_OUTPUT on (the fake server's URL would turn it off)."""
    return fresh_app({**stack_env, "OPENAI_STRUCTURED_OUTPUT": "true"}, TESTING=True)


def run(app: Flask) -> dict:
    """Run a fresh job to its end and return it as the API shows it."""
    with app.app_context():
        job_id = store.create_job(f"All staff must wear gloves {uuid.uuid4()}. Label every box.")[0].id
        assert run_job(job_id) == "succeeded"
    return app.test_client().get(f"/jobs/{job_id}/").get_json()


def test_checklist_items_are_exactly_the_markdown_checklists_items_in_order(app, fake_llm):
    job = run(app)

    assert job["checklist_items"] == [line.removeprefix("- ") for line in job["checklist"].splitlines()]
    assert job["checklist_items"] == checklist_items(job["summary"])
    assert job["checklist_source"] == "markdown"
    assert fake_llm.state.requests[-1]["response_format"] is None


def test_with_structured_output_on_the_checklist_is_asked_for_as_json_schema(structured_app, fake_llm):
    job = run(structured_app)

    checklist_call = fake_llm.state.requests[-1]
    schema = {"type": "json_schema", "json_schema": prompts.CHECKLIST_SCHEMA}
    assert checklist_call["response_format"] == schema
    assert checklist_call["messages"][0]["content"] == prompts.CHECKLIST_STRUCTURED
    assert job["checklist_source"] == "structured"
    assert job["checklist_items"] == checklist_items(job["summary"])
    assert job["checklist"] == "\n".join(f"- {item}" for item in job["checklist_items"])


@pytest.mark.parametrize(
    ("base_url", "setting", "expected"),
    [
        (None, None, True),
        ("https://api.openai.com/v1", None, True),
        ("http://127.0.0.1:11434/v1", None, False),
        ("http://127.0.0.1:11434/v1", True, True),
        (None, False, False),
    ],
)
def test_structured_output_defaults_to_on_for_api_openai_com_only(base_url, setting, expected):
    config = {
        "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": KEY,
        "OPENAI_MODEL": "m",
        "OPENAI_BASE_URL": base_url,
        "OPENAI_STRUCTURED_OUTPUT": setting,
        "LLM_TIMEOUT": 1.0,
        "LLM_MAX_RETRIES": 0,
        "LLM_BACKOFF": 0.1,
    }
    assert create_provider(config).structured is expected


def test_a_server_that_ignores_response_format_gets_its_markdown_read(structured_app, fake_llm):
    fake_llm.state.ignore_response_format = True

    job = run(structured_app)

    assert fake_llm.state.requests[-1]["response_format"] is not None
    assert job["checklist_source"] == "markdown"
    assert job["checklist_items"] == checklist_items(job["summary"])


def test_structured_items_are_read_from_the_json_answer(fake_llm):
    provider = OpenAIProvider(api_key=KEY, model="m", base_url=fake_llm.base_url, structured=True)

    completion = provider.make_checklist("Wear gloves.")

    assert completion.items == tuple(checklist_items("Wear gloves."))
    assert json.loads(completion.text) == {"items": list(completion.items)}
