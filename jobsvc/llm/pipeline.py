"""The two pipeline steps: text in, text out, whatever provider does the work."""

from __future__ import annotations

import re
from dataclasses import replace

from jobsvc.llm.base import Completion, LLMBadResponseError, LLMProvider

# A line that already is a list item: "- x", "* x", "• x", "1. x", "2) x", "[ ] x".
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•\u2013]\s+|\d{1,3}[.)]\s+)?(?:\[[ xX]?\]\s+)?")


def summarize(provider: LLMProvider, text: str) -> Completion:
    """Step 1: a summary of `text`."""
    completion = provider.summarize(text)
    summary = completion.text.strip()
    if not summary:
        raise LLMBadResponseError("The LLM returned an empty summary.")
    return replace(completion, text=summary)


def make_checklist(provider: LLMProvider, summary: str) -> Completion:
    """Step 2: a markdown checklist (`- item` lines) made from the summary."""
    completion = provider.make_checklist(summary)
    checklist = to_markdown_list(completion.text)
    if not checklist:
        raise LLMBadResponseError("The LLM returned no checklist items.")
    return replace(completion, text=checklist)


def to_markdown_list(text: str) -> str:
    """Normalize any list-ish text to one `- item` line per item, dropping headings and blanks."""
    items = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "```")):
            continue
        item = _LIST_MARKER.sub("", stripped, count=1).strip()
        if item and not (item.endswith(":") and len(items) == 0 and stripped == item):
            items.append(f"- {item}")
    return "\n".join(items)
