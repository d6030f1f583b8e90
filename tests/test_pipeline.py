"""The pipeline steps: text in, text out."""

from __future__ import annotations

import pytest

from jobsvc.llm import Completion, LLMBadResponseError, pipeline


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
