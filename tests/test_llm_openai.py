"""The OpenAI provider, through the real SDK, against the fake OpenAI-compatible server."""

from __future__ import annotations

import pytest

from jobsvc.llm import LLMContextExceededError, LLMPermanentError, LLMTransientError, create_provider
from jobsvc.llm.openai_provider import CHECKLIST_PROMPT, SUMMARY_PROMPT, OpenAIProvider

KEY = "sk-test-do-not-leak-123"


@pytest.fixture
def provider(fake_llm) -> OpenAIProvider:
    return OpenAIProvider(
        api_key=KEY, model="fake-model", base_url=fake_llm.base_url, timeout=2, max_retries=1, backoff=0.01
    )


def test_summarize_is_one_chat_completion_with_the_summary_prompt(provider, fake_llm):
    completion = provider.summarize("Wear gloves.")

    assert completion.text == "SUMMARY OF Wear gloves."
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    (call,) = fake_llm.state.requests
    assert call["model"] == "fake-model"
    assert call["messages"] == [
        {"role": "system", "content": SUMMARY_PROMPT},
        {"role": "user", "content": "Wear gloves."},
    ]


def test_make_checklist_uses_the_checklist_prompt(provider, fake_llm):
    provider.make_checklist("The summary.")
    assert fake_llm.state.requests[0]["messages"][0]["content"] == CHECKLIST_PROMPT


def test_transient_errors_are_retried_by_the_sdk(provider, fake_llm):
    fake_llm.state.fail_next(500)
    assert provider.summarize("Wear gloves.").text == "SUMMARY OF Wear gloves."
    assert len(fake_llm.state.requests) == 2


@pytest.mark.parametrize(
    ("status", "code", "says"),
    [
        (401, None, "rejected the API key (HTTP 401); check OPENAI_API_KEY"),
        (403, None, "OPENAI_MODEL=fake-model"),
        (404, None, "does not know model 'fake-model'"),
        (429, "insufficient_quota", "no quota left"),
        (400, None, "rejected the request (HTTP 400): fake error 400"),
    ],
)
def test_permanent_errors_fail_at_once_with_an_actionable_message(provider, fake_llm, status, code, says):
    fake_llm.state.fail_next(status, code=code)
    with pytest.raises(LLMPermanentError) as caught:
        provider.summarize("Wear gloves.")
    assert says in str(caught.value)
    assert KEY not in str(caught.value)
    assert len(fake_llm.state.requests) == 1


@pytest.mark.parametrize(("status", "says"), [(500, "HTTP 500"), (429, "rate-limiting")])
def test_transient_errors_that_outlast_the_retries_say_so(provider, fake_llm, status, says):
    fake_llm.state.fail_next(status, times=2)
    with pytest.raises(LLMTransientError, match=says) as caught:
        provider.summarize("Wear gloves.")
    assert "after 2 attempts" in str(caught.value)


def test_a_slow_server_is_a_timeout(provider, fake_llm):
    fake_llm.state.delay = 2.5
    with pytest.raises(LLMTransientError, match="LLM_TIMEOUT=2s"):
        provider.summarize("Wear gloves.")


def test_an_unreachable_server_is_a_connection_error():
    provider = OpenAIProvider(api_key=KEY, model="m", base_url="http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(LLMTransientError, match="Could not connect"):
        provider.summarize("Wear gloves.")


@pytest.mark.parametrize(
    ("choice", "key", "expected"),
    [("auto", "sk-x", "openai"), ("auto", None, "offline"), ("offline", "sk-x", "offline")],
)
def test_provider_choice(choice, key, expected):
    config = {
        "LLM_PROVIDER": choice,
        "OPENAI_API_KEY": key,
        "OPENAI_MODEL": "m",
        "OPENAI_BASE_URL": None,
        "LLM_TIMEOUT": 1.0,
        "LLM_MAX_RETRIES": 0,
        "LLM_BACKOFF": 0.1,
    }
    assert create_provider(config).name == expected


def test_openai_without_a_key_is_a_permanent_error_naming_the_setting():
    with pytest.raises(LLMPermanentError, match="OPENAI_API_KEY"):
        create_provider({"LLM_PROVIDER": "openai", "OPENAI_API_KEY": None})


def test_a_request_over_the_models_context_is_a_context_error_with_the_size_it_reported(provider, fake_llm):
    fake_llm.state.context_limit = 10

    with pytest.raises(LLMContextExceededError, match="LLM_CONTEXT_TOKENS") as caught:
        provider.summarize("Wear gloves. " * 20)

    assert caught.value.context_tokens == 10
    assert len(fake_llm.state.requests) == 1, "not retried: the same request cannot fit later"
