"""The offline provider: deterministic, extractive, no network.

Its summary is the most informative sentences of the input, verbatim and in their
original order; its checklist is the actionable sentences of that summary. It is
not a language model and says so in every job it produces (`provider: offline`).
"""

from __future__ import annotations

import math
import re
from collections import Counter

import sentencex

from jobsvc.llm.base import Completion, Usage

MODEL = "extractive-v1"
MAX_SUMMARY_SENTENCES = 5

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# Blocks: paragraphs, and list items, which carry no final punctuation to split on.
_BLOCK_BREAK = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*+•]|\d{1,3}[.)])\s)")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")

STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is
    it its itself just me more most my no nor not of off on once only or other our ours
    out over own same she so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours""".split()
)
_DIRECTIVE_WORDS = frozenset(
    """must should shall need needs required require requires ensure ensures always never
    avoid don't please remember mandatory prohibited forbidden""".split()
)
_IMPERATIVE_VERBS = frozenset(
    """add apply attach avoid back call check clean close complete confirm contact create do
    delete disable document double enable ensure file fill follow get give include
    inform install keep label leave list lock log make mark move notify obtain open pay
    plan prepare print provide put read record register remove renew replace report
    request review rotate run save schedule secure send set share sign store submit
    switch take tell test train turn update upload use verify wash wear write""".split()
)


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, list items counted as sentences, whitespace collapsed."""
    sentences = []
    for block in _BLOCK_BREAK.split(text):
        block = _LIST_MARKER.sub("", " ".join(block.split()))
        if block:
            sentences.extend(s.strip() for s in sentencex.segment("en", block) if s.strip())
    return sentences


def _words(sentence: str) -> list[str]:
    return [w for w in _WORD.findall(sentence.lower()) if w not in STOPWORDS]


def is_actionable(sentence: str) -> bool:
    """True if the sentence asks someone to do (or not do) something."""
    words = _WORD.findall(sentence.lower())
    if not words:
        return False
    return words[0] in _IMPERATIVE_VERBS or any(w in _DIRECTIVE_WORDS for w in words)


def summarize_text(text: str, max_sentences: int = MAX_SUMMARY_SENTENCES) -> str:
    """The most informative sentences of `text`, in their original order."""
    sentences = split_sentences(text)
    if len(sentences) <= 2:
        return " ".join(sentences)
    frequencies = Counter(w for s in sentences for w in _words(s))
    top = max(frequencies.values(), default=1)

    def score(index: int) -> float:
        words = _words(sentences[index])
        if not words:
            return 0.0
        weight = sum(frequencies[w] / top for w in words) / math.sqrt(len(words))
        # Guidelines are read for what they ask: favour sentences that ask something.
        return weight * (1.5 if is_actionable(sentences[index]) else 1.0)

    keep = min(max_sentences, max(2, math.ceil(len(sentences) / 3)))
    ranked = sorted(range(len(sentences)), key=lambda i: (-score(i), i))[:keep]
    return " ".join(sentences[i] for i in sorted(ranked))


def checklist_items(summary: str) -> list[str]:
    """The actionable sentences of the summary as items; every sentence if none is."""
    sentences = split_sentences(summary)
    actionable = [s for s in sentences if is_actionable(s)] or sentences
    return [s.rstrip(" .;!") for s in actionable if s.rstrip(" .;!")]


def _usage(prompt: str, completion: str) -> Usage:
    # Words stand in for tokens so that offline jobs report comparable magnitudes.
    prompt_tokens, completion_tokens = len(prompt.split()), len(completion.split())
    return Usage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)


class OfflineProvider:
    """Extractive summary and rule-based checklist; deterministic and free."""

    name = "offline"
    model = MODEL

    def summarize(self, text: str) -> Completion:
        """The most informative sentences of `text`."""
        summary = summarize_text(text)
        return Completion(summary, _usage(text, summary))

    def make_checklist(self, summary: str) -> Completion:
        """A `- item` line per actionable sentence of the summary."""
        checklist = "\n".join(f"- {item}" for item in checklist_items(summary))
        return Completion(checklist, _usage(summary, checklist))
