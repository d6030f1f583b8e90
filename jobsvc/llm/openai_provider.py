"""The OpenAI provider: chat completions through the official SDK, any compatible server."""

from __future__ import annotations

import json
import logging
import random
import re
import time
from typing import Any
from urllib.parse import urlsplit

import openai

from jobsvc.llm import prompts
from jobsvc.llm.base import (
    Completion,
    LLMContextExceededError,
    LLMPermanentError,
    LLMTransientError,
    Usage,
)

# The default prompts of the two steps, under the names callers have known them by.
SUMMARY_PROMPT = prompts.SUMMARY
CHECKLIST_PROMPT = prompts.CHECKLIST
OPENAI_HOST = "api.openai.com"
log = logging.getLogger(__name__)

MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 30.0


def _is_openai(base_url: str | None) -> bool:
    return not base_url or urlsplit(base_url).hostname == OPENAI_HOST


def structured_output_default(base_url: str | None) -> bool:
    """Structured outputs are on for OpenAI itself, off for other servers (support varies)."""
    return _is_openai(base_url)


class OpenAIProvider:
    """Calls `/chat/completions` with explicit timeout and retry settings."""

    name = "openai"
    follows_prompts = True

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        structured: bool | None = None,
    ) -> None:
        self.model = model
        #: Whether the checklist is asked for as JSON through `response_format` (json_schema).
        self.structured = structured_output_default(base_url) if structured is None else structured
        # OpenAI's newer name, which its reasoning models require; compatible servers know the older.
        self._cap_parameter = "max_completion_tokens" if _is_openai(base_url) else "max_tokens"
        # The SDK would retry every 429, insufficient_quota included: we retry ourselves.
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
        self._timeout = timeout
        self._attempts = max_retries + 1
        self._backoff = backoff

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OpenAIProvider:
        """Build the provider from OPENAI_* and LLM_* settings."""
        if not config.get("OPENAI_API_KEY"):
            raise LLMPermanentError(
                "LLM_PROVIDER=openai needs OPENAI_API_KEY (servers that ignore keys accept any value)."
            )
        return cls(
            api_key=config["OPENAI_API_KEY"],
            model=config["OPENAI_MODEL"],
            base_url=config.get("OPENAI_BASE_URL"),
            timeout=config["LLM_TIMEOUT"],
            max_retries=config["LLM_MAX_RETRIES"],
            backoff=config["LLM_BACKOFF"],
            structured=config.get("OPENAI_STRUCTURED_OUTPUT"),
        )

    def summarize(
        self, text: str, prompt: str = prompts.SUMMARY, max_tokens: int | None = None
    ) -> Completion:
        """A summary of `text` (a document, a part of one, or summaries to merge) as one chat completion.

        `max_tokens` caps the answer, so that it fits the room the pipeline left for it.
        """
        if max_tokens is None:
            return self._chat(prompt, text)
        return self._chat(prompt, text, **{self._cap_parameter: max_tokens})

    def make_checklist(self, summary: str, prompt: str | None = None) -> Completion:
        """Step 2 as one chat completion; with structured output on, its items come as JSON."""
        if not self.structured:
            return self._chat(prompt or prompts.CHECKLIST, summary)
        completion = self._chat(
            prompt or prompts.CHECKLIST_STRUCTURED,
            summary,
            response_format={"type": "json_schema", "json_schema": prompts.CHECKLIST_SCHEMA},
        )
        try:
            items = json.loads(completion.text)["items"]
        except (ValueError, TypeError, KeyError):
            items = None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            # A server that ignores response_format: its answer is read as markdown.
            log.warning("structured output asked for, not given by %s; reading markdown", self.model)
            return completion
        return Completion(completion.text, completion.usage, items=tuple(items))

    def _chat(self, instructions: str, text: str, **options: Any) -> Completion:
        for attempt in range(1, self._attempts + 1):
            try:
                response = self._client.chat.completions.create(
                    model=self.model,
                    messages=[
                        {"role": "system", "content": instructions},
                        {"role": "user", "content": text},
                    ],
                    temperature=0,
                    **options,
                )
                break
            except openai.APIError as exc:
                error = self._describe(exc)
                if not error.transient or attempt == self._attempts:
                    raise error from exc
                delay = self._retry_delay(attempt, exc)
                log.warning("LLM call failed (%s); retry %d in %.2fs", type(exc).__name__, attempt, delay)
                time.sleep(delay)
        content = response.choices[0].message.content if response.choices else None
        usage = response.usage
        return Completion(
            text=content or "",
            usage=Usage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
            if usage
            else Usage(),
        )

    def _retry_delay(self, attempt: int, exc: openai.APIError) -> float:
        """Exponential backoff with full jitter; a server's Retry-After wins when it says more."""
        delay = random.uniform(0, min(MAX_BACKOFF, self._backoff * 2 ** (attempt - 1)))
        response = getattr(exc, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        try:
            return max(delay, min(float(retry_after), MAX_RETRY_AFTER)) if retry_after else delay
        except ValueError:
            return delay

    def _describe(self, exc: openai.APIError) -> LLMPermanentError | LLMTransientError:
        """Map an SDK error to a short message naming the setting to fix (no key, no prompt)."""
        host = urlsplit(str(self._client.base_url)).netloc
        tries = f"after {self._attempts} attempt{'s' if self._attempts > 1 else ''}"
        if isinstance(exc, openai.APITimeoutError):
            return LLMTransientError(
                f"The LLM at {host} did not answer within LLM_TIMEOUT={self._timeout:g}s ({tries})."
            )
        if isinstance(exc, openai.APIConnectionError):
            return LLMTransientError(
                f"Could not connect to the LLM at {host} ({tries}); check OPENAI_BASE_URL."
            )
        status = getattr(exc, "status_code", None)
        if isinstance(exc, openai.AuthenticationError):
            return LLMPermanentError(
                f"The LLM at {host} rejected the API key (HTTP 401); check OPENAI_API_KEY."
            )
        if isinstance(exc, openai.PermissionDeniedError):
            return LLMPermanentError(
                f"The LLM at {host} refused access (HTTP 403); check that OPENAI_API_KEY may use "
                f"OPENAI_MODEL={self.model}."
            )
        if isinstance(exc, openai.NotFoundError):
            return LLMPermanentError(
                f"The LLM at {host} does not know model {self.model!r} (HTTP 404); check OPENAI_MODEL "
                "and OPENAI_BASE_URL."
            )
        if isinstance(exc, openai.RateLimitError):
            if exc.code == "insufficient_quota":
                return LLMPermanentError(
                    f"The account behind OPENAI_API_KEY has no quota left at {host} (HTTP 429 "
                    "insufficient_quota); add credit or use another key."
                )
            return LLMTransientError(f"The LLM at {host} kept rate-limiting requests (HTTP 429, {tries}).")
        if _is_context_exceeded(exc):
            reported = _CONTEXT_SIZE.search(str(exc.message or ""))
            return LLMContextExceededError(
                f"The input is longer than the context of {self.model!r} at {host} (HTTP {status} "
                f"context_length_exceeded); set LLM_CONTEXT_TOKENS to the model's context size.",
                int(reported.group(1)) if reported else None,
            )
        if status is not None and status >= 500:
            return LLMTransientError(f"The LLM at {host} kept failing (HTTP {status}, {tries}).")
        return LLMPermanentError(f"The LLM at {host} rejected the request (HTTP {status}): {_excerpt(exc)}")


# "maximum context length is 8192 tokens" (OpenAI), "context window of 2048" (llama.cpp).
_CONTEXT_SIZE = re.compile(r"(?:maximum context length is|context window of)\s+(\d+)", re.IGNORECASE)


def _is_context_exceeded(exc: openai.APIError) -> bool:
    """OpenAI's `context_length_exceeded`, or the same said in words by a compatible server."""
    if not isinstance(exc, openai.BadRequestError):
        return False
    if exc.code == "context_length_exceeded":
        return True
    message = str(exc.message or "").lower()
    return "context" in message and ("exceed" in message or "maximum context length" in message)


def _excerpt(exc: openai.APIError, limit: int = 200) -> str:
    """The provider's own error message, cut short: it may quote the input."""
    body = exc.body if isinstance(exc.body, dict) else {}
    message = str(body.get("message") or exc.message or "no details").strip()
    return message if len(message) <= limit else message[: limit - 1] + "…"
