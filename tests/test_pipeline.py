"""The pipeline steps: text in, text out; the prompts they send, versioned."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobsvc.core import store
from jobsvc.llm import Completion, LLMBadResponseError, pipeline, prompts
from jobsvc.worker.tasks import run_job

README = Path(__file__).resolve().parent.parent / "README.md"


class ScriptedProvider:
    """A provider that answers with fixed texts: the seam the pipeline is written against."""

    name, model = "scripted", "v0"

    def __init__(self, summary: str = "A summary.", checklist: str = "- one") -> None:
        self.summary, self.checklist, self.seen = summary, checklist, []

    def summarize(self, text: str) -> Completion:
        self.seen.append(("summarize", text))
        return Completion(self.summary)

    def make_checklist(self, summary: str) -> Completion:
        self.seen.append(("checklist", summary))
        return Completion(self.checklist)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("- a\n- b", "- a\n- b"),
        ("* a\n+ b\n• c", "- a\n- b\n- c"),
        ("1. a\n2) b", "- a\n- b"),
        ("- [ ] a\n- [x] b", "- a\n- b"),
        ("Here is your checklist:\n\n- a\n\n- b\n", "- a\n- b"),
        ("# Checklist\n```\n- a\n```", "- a"),
        ("plain line", "- plain line"),
    ],
)
def test_to_markdown_list_normalizes_list_shapes(raw, expected):
    assert pipeline.to_markdown_list(raw) == expected


def test_summarize_strips_whitespace():
    assert pipeline.summarize(ScriptedProvider(summary="  Short.  \n"), "text").text == "Short."


def test_make_checklist_works_from_the_summary():
    provider = ScriptedProvider(checklist="1. Do it")
    assert pipeline.make_checklist(provider, "The summary.").text == "- Do it"
    assert provider.seen == [("checklist", "The summary.")]


@pytest.mark.parametrize("step", ["summary", "checklist"])
def test_an_empty_answer_is_a_bad_response(step):
    provider = ScriptedProvider(**{step: "  \n"})
    with pytest.raises(LLMBadResponseError):
        pipeline.summarize(provider, "text") if step == "summary" else pipeline.make_checklist(provider, "s")


@pytest.mark.parametrize("name", sorted(prompts.PROMPTS))
def test_changing_any_prompt_changes_the_prompt_version(name):
    changed = {**prompts.PROMPTS, name: str(prompts.PROMPTS[name]) + " "}
    assert prompts.version_of(changed) != prompts.PROMPT_VERSION == prompts.version_of(prompts.PROMPTS)


def test_a_job_records_the_version_of_the_prompts_that_made_it(app):
    with app.app_context():
        job_id = store.create_job("Wear gloves.")[0].id
        assert run_job(job_id) == "succeeded"
    job = app.test_client().get(f"/jobs/{job_id}/").get_json()
    assert job["prompt_version"] == prompts.PROMPT_VERSION


@pytest.mark.parametrize(
    "name", sorted(name for name, value in prompts.PROMPTS.items() if isinstance(value, str))
)
def test_the_readme_shows_every_prompt_as_sent(name):
    assert prompts.PROMPTS[name] in README.read_text()


def test_the_readme_names_the_current_prompt_version():
    assert f"The current version is `{prompts.PROMPT_VERSION}`." in README.read_text()
