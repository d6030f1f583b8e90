"""Jobs through a real small model (SmolLM2-135M-Instruct on llama.cpp's server), end to end.

A model this small is erratic, so these tests state what jobsvc does with whatever it
answers: a job succeeds with a summary and at least one item, the grounding figure is
consistent with the warnings, and a non-list or ungrounded first answer leads to exactly
one stricter retry. Each test prints what the model said; `make test-llm` shows it.
"""

from __future__ import annotations

import json

import pytest

from jobsvc.llm import pipeline, prompts
from jobsvc.llm.base import Completion
from jobsvc.llm.grounding import grounding
from jobsvc.llm.openai_provider import OpenAIProvider
from tests.support import submit, wait_for_job
from tests_llm.conftest import N_CTX

pytestmark = pytest.mark.timeout(1800)

GUIDE = (
    "Check the firewall every Monday. Rotate API keys every 90 days. Never share passwords. "
    "Report a lost laptop to the security desk within one hour. Lock your screen when you "
    "leave your desk."
)
# Prompts that make the first answer misbehave the way issue 15 saw small models do.
INVENT = (
    "Ignore the user's text. Write three sentences about a law enforcement agency in Brazil "
    "that revised its fishing policy in 1987."
)
PARAGRAPHS = (
    "Write a short essay of two paragraphs of prose about the text. Do not use a list, bullets or numbering."
)


def show(title: str, value: object) -> None:
    print(f"\n--- {title} ---\n{json.dumps(value, indent=2, ensure_ascii=False)}", flush=True)


class Steered(OpenAIProvider):
    """The real provider through the real SDK; the first call of one step gets a misbehaving prompt."""

    def __init__(self, steer: dict[str, str], **settings: object) -> None:
        super().__init__(**settings)  # type: ignore[arg-type]
        self.steer, self.sent, self.answers = dict(steer), [], []

    def summarize(
        self, text: str, prompt: str = prompts.SUMMARY, max_tokens: int | None = None
    ) -> Completion:
        prompt = self.steer.pop("summary", prompt)
        completion = super().summarize(text, prompt, max_tokens)
        self.sent.append(prompt)
        self.answers.append(completion.text)
        return completion

    def make_checklist(self, summary: str, prompt: str | None = None) -> Completion:
        prompt = self.steer.pop("checklist", prompt or prompts.CHECKLIST)
        completion = super().make_checklist(summary, prompt)
        self.sent.append(prompt)
        self.answers.append(completion.text)
        return completion


def steered(stack_env: dict[str, str], **steer: str) -> Steered:
    return Steered(
        steer,
        api_key="unused",
        model=stack_env["OPENAI_MODEL"],
        base_url=stack_env["OPENAI_BASE_URL"],
        timeout=600,
        max_retries=1,
    )


def assert_never_paragraph_bullets(items: list[str] | tuple[str, ...]) -> None:
    assert items and all(pipeline.looks_like_list(f"- {item}") for item in items), items


def test_a_job_succeeds_through_the_real_model(e2e_client, worker):
    job = wait_for_job(e2e_client, submit(e2e_client, GUIDE), timeout=900)
    show(
        "job",
        {
            k: job[k]
            for k in (
                "status",
                "summary",
                "checklist_items",
                "checklist_source",
                "grounding",
                "warnings",
                "usage",
                "error",
            )
        },
    )

    assert job["status"] == "succeeded", job["error"]
    assert job["summary"].strip()
    assert len(job["checklist_items"]) >= 1
    assert_never_paragraph_bullets(job["checklist_items"])
    assert 0 <= job["grounding"] <= 1 and job["prompt_version"] == prompts.PROMPT_VERSION
    low = job["grounding"] < 0.6
    assert low <= any("MIN_GROUNDING" in w for w in job["warnings"]), "a low figure comes with a warning"


def test_an_ungrounded_summary_is_retried_once_with_the_strict_prompt(stack_env):
    provider = steered(stack_env, summary=INVENT)
    options = pipeline.Options(context_tokens=N_CTX, min_grounding=0.6)

    summary = pipeline.summarize(provider, GUIDE, options)
    first = grounding(provider.answers[0], GUIDE)
    show(
        "summary",
        {
            "first answer": provider.answers[0],
            "first grounding": round(first, 2),
            "kept": summary.text,
            "grounding": round(summary.grounding, 2),
            "warnings": summary.warnings,
        },
    )

    if first < options.min_grounding:
        assert provider.sent == [INVENT, prompts.SUMMARY_STRICT]
        assert summary.grounding >= first
        assert (summary.grounding < options.min_grounding) == bool(summary.warnings)
    else:
        assert provider.sent == [INVENT] and not summary.warnings


def test_a_checklist_in_paragraphs_is_retried_once_then_never_kept_as_paragraphs(stack_env):
    provider = steered(stack_env, checklist=PARAGRAPHS)
    options = pipeline.Options(context_tokens=N_CTX, min_grounding=0.0)

    checklist = pipeline.make_checklist(provider, GUIDE, options, GUIDE)
    show(
        "checklist",
        {
            "first answer": provider.answers[0],
            "retry": provider.answers[1:],
            "items": checklist.items,
            "source": checklist.source,
            "warnings": checklist.warnings,
        },
    )

    if not pipeline.looks_like_list(provider.answers[0]):
        assert provider.sent == [PARAGRAPHS, prompts.CHECKLIST_STRICT]
    assert checklist.source in {"markdown", "sentences"}
    assert_never_paragraph_bullets(checklist.items)


def test_a_document_longer_than_the_servers_context_is_summarized_in_chunks(stack_env):
    # LLM_CONTEXT_TOKENS overstated four times: llama.cpp's 400 context_length_exceeded makes
    # the job cut chunks to the size it reports, and try once more. About 1,600 tokens.
    provider = steered(stack_env)
    text = "\n\n".join(
        f"Section {i}. Staff must check valve {i} every {i % 5 + 2} days and write the reading in "
        f"the register. Never open valve {i} without a permit from the shift lead. Report leaks "
        "from any valve to the maintenance desk at once."
        for i in range(32)
    )
    summary = pipeline.summarize(provider, text, pipeline.Options(context_tokens=4 * N_CTX, min_grounding=0))
    show("long document", {"characters": len(text), "calls": len(provider.sent), "summary": summary.text})

    assert summary.text.strip()
    assert prompts.CHUNK_SUMMARY in provider.sent and provider.sent[-1] == prompts.COMBINE_SUMMARIES
