"""Cutting a long document into pieces a model's context can hold, on natural boundaries."""

from __future__ import annotations

import math
import re

import sentencex

#: Characters per token, as a cheap estimate: about 4 for English with OpenAI's tokenizers.
CHARS_PER_TOKEN = 4
# Paragraphs, and list items, which carry no final punctuation to split on.
_BLOCK_BREAK = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*+•]|\d{1,3}[.)])\s)")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def estimate_tokens(text: str) -> int:
    """Roughly how many tokens `text` is: its length over CHARS_PER_TOKEN, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def split_sentences(text: str) -> list[str]:
    """Sentences of `text` (list items and paragraphs end one), whitespace collapsed."""
    sentences = []
    for block in _BLOCK_BREAK.split(text):
        block = " ".join(block.split())
        if block:
            sentences.extend(s.strip() for s in sentencex.segment("en", block) if s.strip())
    return sentences


def split_into_chunks(text: str, max_tokens: int) -> list[str]:
    """Consecutive pieces of `text`, each at most `max_tokens` (estimated), in order.

    Whole paragraphs are packed together while they fit; a paragraph too long for one
    chunk is split into sentences, and a sentence too long for one into words (a last
    resort for text without punctuation).
    """
    max_chars = max(1, max_tokens * CHARS_PER_TOKEN)
    pieces: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= max_chars:
            pieces.append(paragraph)
            continue
        for sentence in split_sentences(paragraph):
            pieces.extend(_hard_split(sentence, max_chars) if len(sentence) > max_chars else [sentence])
    return _pack(pieces, max_chars)


def group_to_fit(texts: list[str], max_tokens: int) -> list[list[str]]:
    """`texts` in consecutive groups that fit `max_tokens` together, at least two per group.

    Two per group at least, so that summarizing each group at least halves the count and
    a reduction always ends, even when a model's summaries come back too long.
    """
    max_chars = max_tokens * CHARS_PER_TOKEN
    groups: list[list[str]] = []
    for text in texts:
        current = groups[-1] if groups else None
        if current is not None and (
            len(current) < 2 or sum(len(t) + 2 for t in current) + len(text) <= max_chars
        ):
            current.append(text)
        else:
            groups.append([text])
    if len(groups) > 1 and len(groups[-1]) == 1:
        groups[-2].extend(groups.pop())
    return groups


def _hard_split(text: str, max_chars: int) -> list[str]:
    words, pieces, current = text.split(), [], ""
    for word in words:
        while len(word) > max_chars:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:max_chars])
            word = word[max_chars:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) > max_chars:
            pieces.append(current)
            candidate = word
        current = candidate
    if current:
        pieces.append(current)
    return pieces


def _pack(pieces: list[str], max_chars: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}\n\n{piece}" if current else piece
        if current and len(candidate) > max_chars:
            chunks.append(current)
            candidate = piece
        current = candidate
    if current:
        chunks.append(current)
    return chunks
