"""What every provider shares: the interface, what a call returns, and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Usage:
    """Token counts one call consumed, as the provider reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    """What one provider call produced."""

    text: str
    usage: Usage = field(default_factory=Usage)
    #: The checklist's items when the provider answered in structured JSON; None otherwise.
    items: tuple[str, ...] | None = None


class LLMProvider(Protocol):
    """Turns text into a summary, and a summary into a checklist.

    A provider that reads prompts (a language model) says so with `follows_prompts = True`
    and accepts a `prompt=` keyword (a text from `jobsvc.llm.prompts`) on both methods; the
    pipeline then asks it for chunk summaries, merged summaries and stricter retries. One
    that does not (the extractive offline provider) is only ever called with the text.
    """

    name: str
    model: str

    def summarize(self, text: str) -> Completion:
        """Summarize a guideline document."""
        ...

    def make_checklist(self, summary: str) -> Completion:
        """Turn a summary into a markdown bullet list of actions."""
        ...


class LLMError(Exception):
    """A provider call failed; `str(error)` is safe to show a user (no secrets, no prompt)."""

    #: Whether trying the same call again later may succeed.
    transient: bool = False


class LLMPermanentError(LLMError):
    """The request cannot succeed until someone changes a setting or the input."""


class LLMTransientError(LLMError):
    """The provider was unreachable, slow or overloaded, and retries ran out."""

    transient = True


class LLMContextExceededError(LLMPermanentError):
    """The request was longer than the model's context window (OpenAI: context_length_exceeded)."""

    def __init__(self, message: str, context_tokens: int | None = None) -> None:
        super().__init__(message)
        #: The context size the server reported, when its message said.
        self.context_tokens = context_tokens


class LLMBadResponseError(LLMError):
    """The provider answered, but with nothing usable."""
