"""LLM providers behind one small interface: pick one from the settings, one per process."""

from __future__ import annotations

from typing import Any

from flask import current_app

from jobsvc.llm import offline, openai_provider
from jobsvc.llm.base import (
    Completion,
    LLMBadResponseError,
    LLMContextExceededError,
    LLMError,
    LLMPermanentError,
    LLMProvider,
    LLMTransientError,
    Usage,
)

__all__ = [
    "Completion",
    "LLMBadResponseError",
    "LLMContextExceededError",
    "LLMError",
    "LLMPermanentError",
    "LLMProvider",
    "LLMTransientError",
    "Usage",
    "create_provider",
    "get_provider",
]


def create_provider(config: dict[str, Any]) -> LLMProvider:
    """The provider that LLM_PROVIDER (and OPENAI_API_KEY, for `auto`) selects."""
    choice = config["LLM_PROVIDER"]
    if choice == "auto":
        choice = "openai" if config.get("OPENAI_API_KEY") else "offline"
    if choice == "openai":
        return openai_provider.OpenAIProvider.from_config(config)
    return offline.OfflineProvider()


def get_provider() -> LLMProvider:
    """This process's provider for the current app, created on first use (after any fork)."""
    state = current_app.extensions.setdefault("jobsvc.llm", {})
    if "provider" not in state:
        state["provider"] = create_provider(current_app.config)
    return state["provider"]
