"""The two pipeline steps: a summary of the input, then a checklist made from the summary.

Both are functions of text and a provider; the worker persists what they return. A
document longer than the model's context is summarized map-reduce: chunk summaries
(concurrent, each handed to a checkpoint callback so a re-run pays for none twice),
then summaries of those summaries until one call can merge them. Every output gets a
grounding figure against the input; a low one, or a checklist that is not a list,
buys one retry with a stricter prompt, then a warning or a sentence split.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any

from jobsvc.llm import prompts
from jobsvc.llm.base import (
    Completion,
    LLMBadResponseError,
    LLMContextExceededError,
    LLMError,
    LLMProvider,
    Usage,
)
from jobsvc.llm.chunking import estimate_tokens, group_to_fit, split_into_chunks, split_sentences
from jobsvc.llm.grounding import content_stems, grounding

# A line that already is a list item: "- x", "* x", "• x", "1. x", "2) x", "[ ] x".
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•\u2013]\s+|\d{1,3}[.)]\s+)?(?:\[[ xX]?\]\s+)?")
_HAS_MARKER = re.compile(r"^\s*(?:[-*+•\u2013]|\d{1,3}[.)])\s+")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
#: Tokens kept free for the answer in every call, at most (a quarter of a small context).
ANSWER_TOKENS = 1024
#: Chunks smaller than this say too little to summarize: below it, a context error fails the job.
MIN_CHUNK_TOKENS = 100
#: An item of more sentences than this is a paragraph, not a checklist item.
MAX_ITEM_SENTENCES = 2

#: Called with (key, summary, usage) for each chunk summary made; False means stop (the job
#: was canceled or lost its lease), True that it is kept.
Checkpoint = Callable[[str, str, Usage], bool]


@dataclass(frozen=True)
class Options:
    """What the settings say about how to run the steps."""

    context_tokens: int | None = None
    map_concurrency: int = 4
    min_grounding: float = 0.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Options:
        """LLM_CONTEXT_TOKENS, LLM_MAP_CONCURRENCY and MIN_GROUNDING."""
        return cls(config["LLM_CONTEXT_TOKENS"], config["LLM_MAP_CONCURRENCY"], config["MIN_GROUNDING"])


@dataclass(frozen=True)
class Summary:
    """Step 1's output."""

    text: str
    #: Tokens of the calls not already handed to a checkpoint (the final call, its retry).
    usage: Usage = field(default_factory=Usage)
    grounding: float = 1.0
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Checklist:
    """Step 2's output: the markdown list and exactly its items, in order."""

    text: str
    items: tuple[str, ...]
    #: How the items were read: structured (JSON), markdown, or sentences (not a list twice).
    source: str
    usage: Usage = field(default_factory=Usage)
    #: The job's figure: the summary's and the checklist's content words found in the input.
    grounding: float = 1.0
    warnings: tuple[str, ...] = ()


def summarize(
    provider: LLMProvider,
    text: str,
    options: Options | None = None,
    done: Mapping[str, str] | None = None,
    checkpoint: Checkpoint | None = None,
) -> Summary | None:
    """Step 1: a summary of `text`, map-reduce when it is longer than the context.

    `done` holds chunk summaries a previous run kept (by key); None is returned when the
    checkpoint refuses one (stop paying: the job is no longer this run's).
    """
    options = options or Options()
    budget = _input_budget(provider, options)
    calls = _Calls(provider, options, dict(done or {}), checkpoint)
    calls.answer_tokens = _answer_tokens(options.context_tokens) if budget is not None else None
    try:
        draft = calls.reduce(text, budget)
    except LLMContextExceededError as exc:
        # The settings or the estimate were too generous for this model: smaller chunks, once.
        smaller = _shrunk(budget, text, exc.context_tokens)
        if smaller < MIN_CHUNK_TOKENS:
            raise  # a context that small holds no useful chunk: the setting is what to fix
        room = calls.answer_tokens or ANSWER_TOKENS
        calls.answer_tokens = (
            min(room, _answer_tokens(exc.context_tokens)) if exc.context_tokens else room // 2
        )
        draft = calls.reduce(text, smaller)
    if draft is None:
        return None
    source = content_stems(text)
    figure, warnings = grounding(draft.text, source), ()
    if figure < options.min_grounding and _follows_prompts(provider):
        strict = _nonempty(
            # The same input as the call it replaces: the document, or the summaries to merge.
            calls.ask(prompts.SUMMARY_STRICT, calls.last_input),
            "summary",
        )
        draft = replace(draft, usage=_sum(draft.usage, strict.usage))
        if (strict_figure := grounding(strict.text, source)) >= figure:
            draft, figure = replace(strict, usage=draft.usage), strict_figure
    if figure < options.min_grounding:
        warnings = (_low_grounding("summary", figure, options.min_grounding, _follows_prompts(provider)),)
    return Summary(draft.text, draft.usage, figure, warnings)


def make_checklist(
    provider: LLMProvider,
    summary: str,
    options: Options | None = None,
    source_text: str | None = None,
) -> Checklist:
    """Step 2: the checklist made from the summary, its items, and the job's grounding figure."""
    options = options or Options()
    source = content_stems(source_text if source_text is not None else summary)
    follows = _follows_prompts(provider)
    structured = follows and bool(getattr(provider, "structured", False))
    first = (
        provider.make_checklist(summary, prompt=prompts.CHECKLIST_STRUCTURED)  # type: ignore[call-arg]
        if structured
        else provider.make_checklist(summary)
    )
    usage, warnings, answers = first.usage, [], [first.text]
    read = _read_items(first)
    figure = grounding("\n".join(read[0]), source) if read else 0.0
    if follows and (read is None or figure < options.min_grounding):
        strict_prompt = prompts.CHECKLIST_STRUCTURED_STRICT if structured else prompts.CHECKLIST_STRICT
        second = provider.make_checklist(summary, prompt=strict_prompt)  # type: ignore[call-arg]
        usage, answers = _sum(usage, second.usage), [*answers, second.text]
        retried = _read_items(second)
        retried_figure = grounding("\n".join(retried[0]), source) if retried is not None else 0.0
        if retried is not None and (read is None or retried_figure >= figure):
            read, figure = retried, retried_figure
    if read is None:
        # Of the answers in paragraphs, the one the input supports best, one item per sentence.
        figure, items = max(
            (grounding("\n".join(items), source), items)
            for items in (_sentence_items(answer) for answer in answers)
        )
        read = (items, "sentences")
        warnings.append(
            "The model answered the checklist in paragraphs instead of a list"
            + (", twice" if follows else "")
            + "; its items are the sentences of that answer."
        )
    items, how = read
    if not items:
        raise LLMBadResponseError("The LLM returned no checklist items.")
    if figure < options.min_grounding:
        warnings.append(_low_grounding("checklist", figure, options.min_grounding, follows))
    markdown = "\n".join(f"- {item}" for item in items)
    job_figure = grounding(summary + "\n" + markdown, source)
    return Checklist(markdown, items, how, usage, round(job_figure, 3), tuple(warnings))


def to_markdown_list(text: str) -> str:
    """Normalize any list-ish text to one `- item` line per item, dropping headings and blanks."""
    return "\n".join(f"- {item}" for item in list_items(text))


def list_items(text: str) -> list[str]:
    """The items of a list-ish answer: its marked lines when it has any, else every line.

    A preamble ("Here is your checklist:") and closing remarks are dropped; an indented
    line after an item continues that item.
    """
    lines = [line for line in text.splitlines() if line.strip() and not line.strip().startswith(("#", "```"))]
    marked = any(_HAS_MARKER.match(line) for line in lines)
    items: list[str] = []
    for line in lines:
        if marked and not _HAS_MARKER.match(line):
            if items and line[:1].isspace():
                items[-1] = f"{items[-1]} {line.strip()}"
            continue
        item = _clean(_LIST_MARKER.sub("", line.strip(), count=1))
        if item and not (item.endswith(":") and not items and not _HAS_MARKER.match(line)):
            items.append(item)
    return items


def looks_like_list(text: str) -> bool:
    """True if the answer is a list: marked lines, no paragraph among them or beside them."""
    lines = _strip_preamble(text).splitlines()
    lines = [line for line in lines if line.strip() and not line.strip().startswith(("#", "```"))]
    marked = [line for line in lines if _HAS_MARKER.match(line)]
    unmarked = [line for line in lines if not _HAS_MARKER.match(line) and not line[:1].isspace()]
    if not marked or len(unmarked) > len(marked) // 2:
        return False
    return all(len(_SENTENCE_END.findall(line)) <= MAX_ITEM_SENTENCES for line in marked + unmarked)


class _Calls:
    """The summary calls of one step: one, or map-reduce over chunks, checkpointed."""

    def __init__(
        self, provider: LLMProvider, options: Options, done: dict[str, str], checkpoint: Checkpoint | None
    ) -> None:
        self.provider, self.options, self.done, self.checkpoint = provider, options, done, checkpoint
        self.last_input = ""
        #: Cap on each answer (a model that rambles must still leave room to merge its summaries).
        self.answer_tokens: int | None = None

    def ask(self, prompt: str, text: str) -> Completion:
        """One summary call; the plain method for the default prompt and no cap (any provider)."""
        if prompt == prompts.SUMMARY and self.answer_tokens is None:
            return self.provider.summarize(text)
        return self.provider.summarize(text, prompt=prompt, max_tokens=self.answer_tokens)  # type: ignore[call-arg]

    def reduce(self, text: str, budget: int | None) -> Completion | None:
        if budget is None or estimate_tokens(text) <= budget:
            self.last_input = text
            return _nonempty(self.ask(prompts.SUMMARY, text), "summary")
        summaries = self.map(prompts.CHUNK_SUMMARY, split_into_chunks(text, budget))
        while summaries is not None and estimate_tokens("\n\n".join(summaries)) > budget:
            groups = group_to_fit(summaries, budget)
            summaries = self.map(prompts.COMBINE_SUMMARIES, ["\n\n".join(group) for group in groups])
        if summaries is None:
            return None
        self.last_input = "\n\n".join(summaries)
        return _nonempty(self.ask(prompts.COMBINE_SUMMARIES, self.last_input), "summary")

    def map(self, prompt: str, texts: list[str]) -> list[str] | None:
        """A summary of each text, concurrently (bounded), each checkpointed as it arrives."""
        keys = [_key(prompt, text) for text in texts]
        todo = [i for i, key in enumerate(keys) if key not in self.done]
        if todo:
            pool = ThreadPoolExecutor(min(self.options.map_concurrency, len(todo)), "llm-map")
            failure: LLMError | None = None
            try:
                futures = {pool.submit(self.ask, prompt, texts[i]): i for i in todo}
                for future in as_completed(futures):
                    if future.cancelled():
                        continue
                    index = futures[future]
                    try:
                        completion = _nonempty(future.result(), "chunk summary")
                    except LLMError as exc:
                        # Start no more calls; keep those already paid for, then fail.
                        failure = failure or exc
                        for other in futures:
                            other.cancel()
                        continue
                    if self.checkpoint is not None and not self.checkpoint(
                        keys[index], completion.text, completion.usage
                    ):
                        return None
                    self.done[keys[index]] = completion.text
            finally:
                # On a cancel or a job timeout: start no more calls, wait for none.
                pool.shutdown(wait=False, cancel_futures=True)
            if failure is not None:
                raise failure
        return [self.done[key] for key in keys]


def _input_budget(provider: LLMProvider, options: Options) -> int | None:
    """Tokens of input one call may carry, or None when the input is never split."""
    if not options.context_tokens or not _follows_prompts(provider):
        return None
    return _input_budget_for(options.context_tokens)


def _answer_tokens(context_tokens: int | None) -> int:
    """Room left for one answer: ANSWER_TOKENS, or a quarter of a small context."""
    return min(ANSWER_TOKENS, (context_tokens or 4 * ANSWER_TOKENS) // 4)


def _input_budget_for(context_tokens: int) -> int:
    prompt_tokens = max(estimate_tokens(p) for p in prompts.PROMPTS.values() if isinstance(p, str))
    answer = _answer_tokens(context_tokens)
    # 10% spare: chars/4 underestimates some texts (numbers, code, other languages).
    return max(1, int((context_tokens - answer - prompt_tokens - 16) * 0.9))


def _shrunk(budget: int | None, text: str, reported: int | None) -> int:
    """The budget for a second try: what the context size the server reported allows, else half.

    Half, too, when the server's size allows more than was tried: then the estimate of
    tokens was what fell short.
    """
    tried = min(budget or estimate_tokens(text), estimate_tokens(text))
    allowed = _input_budget_for(reported) if reported else tried
    return max(1, allowed if allowed < tried else tried // 2)


def _follows_prompts(provider: LLMProvider) -> bool:
    return bool(getattr(provider, "follows_prompts", False))


def _key(prompt: str, text: str) -> str:
    """Names a chunk summary by what it summarizes and how: the same chunk is never paid twice."""
    return hashlib.sha256(f"{prompt}\0{text}".encode()).hexdigest()[:16]


def _nonempty(completion: Completion, what: str) -> Completion:
    text = completion.text.strip()
    if not text:
        raise LLMBadResponseError(f"The LLM returned an empty {what}.")
    return Completion(text, completion.usage, completion.items)


def _read_items(completion: Completion) -> tuple[tuple[str, ...], str] | None:
    """The answer's items and how they were read, or None when it is not a list."""
    if completion.items is not None:
        return tuple(item for item in map(_clean, completion.items) if item), "structured"
    if not looks_like_list(completion.text):
        return None
    return tuple(list_items(completion.text)), "markdown"


def _sentence_items(answer: str) -> tuple[str, ...]:
    return tuple(item for item in map(_clean, split_sentences(_strip_preamble(answer))) if item)


def _strip_preamble(text: str) -> str:
    lines = text.strip().splitlines()
    if lines and lines[0].rstrip().endswith(":") and not _HAS_MARKER.match(lines[0]):
        lines = lines[1:]
    return "\n".join(lines)


def _clean(item: str) -> str:
    return _LIST_MARKER.sub("", " ".join(item.split()), count=1).rstrip(" ;")


def _sum(a: Usage, b: Usage) -> Usage:
    return Usage(
        a.prompt_tokens + b.prompt_tokens,
        a.completion_tokens + b.completion_tokens,
        a.total_tokens + b.total_tokens,
    )


def _low_grounding(step: str, figure: float, minimum: float, retried: bool) -> str:
    return (
        f"Only {figure:.0%} of the {step}'s content words occur in the input (MIN_GROUNDING="
        f"{minimum:g}){', even after a stricter retry' if retried else ''}: it may state things the "
        "input does not; check it against the source."
    )
