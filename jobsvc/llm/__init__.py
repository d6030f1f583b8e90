"""LLM providers behind one small interface, and the errors they raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import current_app


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


class LLMProvider(Protocol):
    """Turns text into a summary, and a summary into a checklist."""

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


class LLMBadResponseError(LLMError):
    """The provider answered, but with nothing usable."""


def create_provider(config: dict[str, Any]) -> LLMProvider:
    """The provider that LLM_PROVIDER (and OPENAI_API_KEY, for `auto`) selects."""
    choice = config["LLM_PROVIDER"]
    if choice == "auto":
        choice = "openai" if config.get("OPENAI_API_KEY") else "offline"
    if choice == "openai":
        from .openai_provider import OpenAIProvider

        return OpenAIProvider.from_config(config)
    from .offline import OfflineProvider

    return OfflineProvider()


def preload() -> None:
    """Import every provider's code now, before the worker forks, so its processes share it."""
    from . import offline, openai_provider  # noqa: F401


def get_provider() -> LLMProvider:
    """This process's provider for the current app, created on first use (after any fork)."""
    state = current_app.extensions.setdefault("jobsvc.llm", {})
    if "provider" not in state:
        state["provider"] = create_provider(current_app.config)
    return state["provider"]
