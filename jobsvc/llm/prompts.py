"""Every prompt the pipeline sends, in one place, and the version that names them.

PROMPT_VERSION is a hash of all the texts below (structured-output schema included), so
changing any prompt changes the version every new job records: no one has to remember
to bump it. The README quotes these texts; a test checks that it quotes them verbatim.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

SUMMARY = (
    "You summarize guideline documents for busy readers. Write a faithful summary of "
    "the document in at most five sentences of plain prose. Keep every obligation, "
    "prohibition, deadline and number; leave out background and marketing."
)

SUMMARY_STRICT = (
    "You summarize guideline documents for busy readers. Write a summary of the document "
    "in at most five sentences of plain prose, using only facts, names and numbers that "
    "appear in the document itself; add nothing, guess nothing. Keep every obligation, "
    "prohibition, deadline and number; leave out background and marketing."
)

CHUNK_SUMMARY = (
    "You are given one part of a longer guideline document. Summarize this part in at most "
    "five sentences of plain prose, using only what it says. Keep every obligation, "
    "prohibition, deadline and number; leave out background and marketing."
)

COMBINE_SUMMARIES = (
    "You are given summaries of consecutive parts of one guideline document, separated by "
    "blank lines. Merge them into one faithful summary of the whole document in at most "
    "five sentences of plain prose. Keep every obligation, prohibition, deadline and "
    "number; add nothing that the summaries do not say."
)

CHECKLIST = (
    "Turn the summary you are given into a checklist of concrete actions. Answer with "
    "a markdown bullet list only: one '- ' line per action, imperative mood, no "
    "headings, no preamble, no closing remarks."
)

CHECKLIST_STRICT = (
    "Turn the summary you are given into a checklist of concrete actions, using only what "
    "the summary says. Your answer must be a markdown bullet list and nothing else: every "
    "line starts with '- ' and holds one short action in the imperative mood. No "
    "paragraphs, no headings, no preamble, no closing remarks."
)

CHECKLIST_STRUCTURED = (
    "Turn the summary you are given into a checklist of concrete actions: one short item "
    "per action, imperative mood, using only what the summary says. Answer in JSON as "
    "the schema asks."
)

CHECKLIST_STRUCTURED_STRICT = (
    "Turn the summary you are given into a checklist of concrete actions: one short item "
    "per action, imperative mood. Use only facts, names and numbers that the summary "
    "states; add nothing, guess nothing. Answer in JSON as the schema asks."
)

# OpenAI structured outputs (`response_format`): the checklist as a JSON object of items.
CHECKLIST_SCHEMA: dict[str, Any] = {
    "name": "checklist",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "string"}}},
        "required": ["items"],
        "additionalProperties": False,
    },
}

PROMPTS: dict[str, Any] = {
    "SUMMARY": SUMMARY,
    "SUMMARY_STRICT": SUMMARY_STRICT,
    "CHUNK_SUMMARY": CHUNK_SUMMARY,
    "COMBINE_SUMMARIES": COMBINE_SUMMARIES,
    "CHECKLIST": CHECKLIST,
    "CHECKLIST_STRICT": CHECKLIST_STRICT,
    "CHECKLIST_STRUCTURED": CHECKLIST_STRUCTURED,
    "CHECKLIST_STRUCTURED_STRICT": CHECKLIST_STRUCTURED_STRICT,
    "CHECKLIST_SCHEMA": CHECKLIST_SCHEMA,
}


def version_of(prompts: Mapping[str, Any]) -> str:
    """A short name for exactly these prompt texts: `p-` and 12 hex digits of their SHA-256."""
    canonical = json.dumps(prompts, sort_keys=True, ensure_ascii=False)
    return "p-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


PROMPT_VERSION = version_of(PROMPTS)
