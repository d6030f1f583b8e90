"""How much of an output the input supports: a cheap check for invented facts.

The figure is the share of the output's distinct content words (stopwords removed,
lightly stemmed, numbers kept) that also occur in the input. It costs one pass over
the text, no model. It cannot tell a faithful paraphrase with new words from an
invention, which is why a low figure buys one stricter retry and then a warning, never
a failure.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing don't down during
    each few for from further had has have having he her here hers him his how i if in into
    is it its itself just me more most my no nor not of off on once only or other our ours
    out over own same she should so some such than that the their theirs them then there
    these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours must shall may might need
    needs per via every""".split()
)
# Words a summary or a checklist adds about itself or as glue ("Ensure that ...",
# "Confirm it is done", "The document says ..."): they state no fact of their own.
GLUE_WORDS = frozenset(
    """summary summarize summarized document documents text guideline guidelines checklist
    item items action actions act step steps ensure sure make confirm done follow
    following note important key overall""".split()
)
_SUFFIXES = ("ingly", "ings", "ing", "ions", "ion", "edly", "ed", "ies", "es", "ly", "s")


def stem(word: str) -> str:
    """A crude stem: one common English suffix and a final "e" cut, if enough remains."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def content_stems(text: str) -> set[str]:
    """The distinct stems of the content words of `text` (numbers included)."""
    stems = set()
    for word in _WORD.findall(text.lower()):
        word = word.replace("'", "")
        if word in STOPWORDS or word in GLUE_WORDS:
            continue
        stems.add(stem(word))
    return stems


def grounding(output: str, source: str | set[str]) -> float:
    """Share of `output`'s content words found in `source` (text, or its content_stems): 0 to 1.

    An output with no content words counts as fully grounded: it asserts nothing.
    """
    said = content_stems(output)
    if not said:
        return 1.0
    known = source if isinstance(source, set) else content_stems(source)
    return len(said & known) / len(said)
