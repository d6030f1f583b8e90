"""Grounded output: a figure per job, one stricter retry, then a warning; lists, never paragraphs."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask

from jobsvc.core import store
from jobsvc.llm import pipeline, prompts
from jobsvc.llm.grounding import grounding
from jobsvc.worker.tasks import run_job
from tests.fake_openai import INVENTED_SUMMARY, PARAGRAPHS_OPENING, checklist_items

POLICY = "Keep customer records for five years, then delete them. Never copy records to personal devices."


def run(app: Flask, text: str | None = None) -> dict:
    """Run a fresh job to its end and return it as the API shows it."""
    text = text or f"{POLICY} Ticket {uuid.uuid4().hex[:8]}."
    with app.app_context():
        job_id = store.create_job(text)[0].id
        assert run_job(job_id) == "succeeded"
    return app.test_client().get(f"/jobs/{job_id}/").get_json()


def prompts_sent(fake_llm) -> list[str]:
    return [call["messages"][0]["content"] for call in fake_llm.state.requests]


def test_words_that_occur_in_the_input_count_as_grounded_whatever_their_form():
    source = "Staff must wash their hands and store raw meat on the lowest shelf."
    assert grounding("Washing hands; the meat is stored on the lowest shelf.", source) == 1.0


def test_invented_facts_lower_the_figure():
    assert grounding(INVENTED_SUMMARY, POLICY) < 0.2
    assert grounding("Delete customer records after five years.", POLICY) == 1.0


def test_a_faithful_job_records_its_grounding_and_no_warning(app, fake_llm):
    job = run(app)

    assert job["grounding"] >= app.config["MIN_GROUNDING"]
    assert job["warnings"] == []
    assert prompts_sent(fake_llm) == [prompts.SUMMARY, prompts.CHECKLIST]


def test_an_invented_summary_is_retried_once_with_the_stricter_prompt(app, fake_llm):
    fake_llm.state.invent_facts(1, step="summary")

    job = run(app)

    assert prompts_sent(fake_llm) == [prompts.SUMMARY, prompts.SUMMARY_STRICT, prompts.CHECKLIST]
    assert job["summary"].startswith("SUMMARY OF Keep customer records")
    assert job["grounding"] >= app.config["MIN_GROUNDING"] and job["warnings"] == []
    # Both summary calls were paid for, and are counted.
    assert job["usage"]["total_tokens"] == sum(c["usage"]["total_tokens"] for c in fake_llm.state.requests)


def test_a_summary_still_invented_after_the_retry_succeeds_with_a_warning(app, fake_llm):
    fake_llm.state.invent_facts(2, step="summary")

    job = run(app)

    assert prompts_sent(fake_llm)[:2] == [prompts.SUMMARY, prompts.SUMMARY_STRICT]
    assert job["status"] == "succeeded"
    assert job["grounding"] < app.config["MIN_GROUNDING"]
    assert any("summary's" in warning and "MIN_GROUNDING" in warning for warning in job["warnings"])


def test_an_invented_checklist_is_retried_once_with_the_stricter_prompt(app, fake_llm):
    fake_llm.state.invent_facts(1, step="checklist")

    job = run(app)

    assert prompts_sent(fake_llm) == [prompts.SUMMARY, prompts.CHECKLIST, prompts.CHECKLIST_STRICT]
    assert job["checklist_items"] == checklist_items(job["summary"]) and job["warnings"] == []


def test_a_checklist_in_paragraphs_is_retried_once_with_the_stricter_prompt(app, fake_llm):
    fake_llm.state.paragraphs = 1

    job = run(app)

    assert prompts_sent(fake_llm) == [prompts.SUMMARY, prompts.CHECKLIST, prompts.CHECKLIST_STRICT]
    assert job["checklist_source"] == "markdown"
    assert job["checklist_items"] == checklist_items(job["summary"])


def test_a_checklist_in_paragraphs_twice_becomes_one_item_per_sentence(app, fake_llm):
    fake_llm.state.paragraphs = 2

    job = run(app)

    assert prompts_sent(fake_llm) == [prompts.SUMMARY, prompts.CHECKLIST, prompts.CHECKLIST_STRICT]
    assert job["checklist_source"] == "sentences"
    items = job["checklist_items"]
    assert items[0] == PARAGRAPHS_OPENING
    assert len(items) >= 3 and all(item.count(". ") == 0 and "\n" not in item for item in items)
    assert job["checklist"] == "\n".join(f"- {item}" for item in items)
    assert any("paragraphs" in warning for warning in job["warnings"])


@pytest.mark.parametrize(
    ("answer", "is_list"),
    [
        ("- a\n- b", True),
        ("Here is the checklist:\n1. a\n2. b", True),
        ("- Wash hands.\n  Use soap.\n- Dry them.", True),
        ("First, wash your hands. Then dry them.\n\nAfter that, put on gloves. Also tie your hair.", False),
        ("- First do this. Then do that. After that, something else. Finally, rest.", False),
        ("Wash hands.", False),
    ],
)
def test_an_answer_is_a_list_when_its_lines_are_items_not_paragraphs(answer, is_list):
    assert pipeline.looks_like_list(answer) is is_list


def test_a_lists_closing_remark_is_not_an_item():
    assert pipeline.list_items("- a\n- b\nLet me know if you need more.") == ["a", "b"]
