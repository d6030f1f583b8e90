"""Documents longer than the model's context: map-reduce, checkpoints, a shrink on context errors."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
from flask import Flask

from jobsvc.core import store
from jobsvc.core.models import JobStatus
from jobsvc.llm import chunking, pipeline, prompts
from jobsvc.llm.openai_provider import OpenAIProvider
from jobsvc.worker.tasks import run_job
from tests.conftest import fresh_app
from tests.fake_openai import estimate_tokens

CONTEXT = 600  # tokens, as a small local model might have


@pytest.fixture(scope="module")
def small_context_app(stack_env: dict[str, str]) -> Flask:
    """The stack's app, told that the model's context holds CONTEXT tokens."""
    return fresh_app(stack_env, TESTING=True, LLM_CONTEXT_TOKENS=CONTEXT, LLM_MAP_CONCURRENCY=4)


def document(paragraphs: int = 80) -> tuple[str, list[str]]:
    """A guideline text of `paragraphs` distinct paragraphs, and a marker unique to each."""
    tag = uuid.uuid4().hex[:6]
    markers = [f"V{tag}{i:03d}" for i in range(paragraphs)]
    text = "\n\n".join(
        f"Staff must check valve {m} every {i % 7 + 2} days and log the reading in the register. "
        f"Never open valve {m} without a permit from the shift lead."
        for i, m in enumerate(markers)
    )
    return text, markers


def system(call: dict) -> str:
    return call["messages"][0]["content"]


def user(call: dict) -> str:
    return call["messages"][-1]["content"]


def run(app: Flask, text: str) -> tuple[str, str]:
    with app.app_context():
        job_id = store.create_job(text)[0].id
        return job_id, run_job(job_id)


def test_a_document_longer_than_the_context_is_summarized_map_reduce_within_it(small_context_app, fake_llm):
    fake_llm.state.context_limit = CONTEXT
    fake_llm.state.delay = 0.2  # calls overlap long enough for the fake to count them
    text, markers = document()
    assert estimate_tokens([{"content": text}]) > 4 * CONTEXT

    job_id, outcome = run(small_context_app, text)

    assert outcome == "succeeded"
    calls = fake_llm.state.requests
    assert all(call["usage"] is not None for call in calls), "no call went over the context"
    chunk_calls = [c for c in calls if system(c) == prompts.CHUNK_SUMMARY]
    assert len(chunk_calls) > 1
    # Every paragraph went to exactly one chunk, whole.
    assert all(sum(marker in user(c) for c in chunk_calls) == 1 for marker in markers)
    assert any(system(c) == prompts.COMBINE_SUMMARIES for c in calls)
    assert system(calls[-1]) == prompts.CHECKLIST
    assert 1 < fake_llm.state.max_in_flight <= 4, "chunks are summarized concurrently, at most 4 at once"
    # Each summary is capped to the room left for it, so that a rambling model's still merge.
    assert {c["max_tokens"] for c in calls if system(c) != prompts.CHECKLIST} == {CONTEXT // 4}
    with small_context_app.app_context():
        job = store.get_job(job_id)
        # Two steps for the client, with the tokens of every call summed.
        assert job.summary and job.checklist
        assert job.total_tokens == sum(call["usage"]["total_tokens"] for call in calls)
        # Every chunk summary and every intermediate merge is checkpointed.
        merges = [c for c in calls if system(c) == prompts.COMBINE_SUMMARIES]
        assert len(job.chunk_summaries) == len(chunk_calls) + len(merges) - 1


def test_a_rerun_pays_for_no_chunk_summary_twice(small_context_app, fake_llm):
    fake_llm.state.context_limit = CONTEXT
    text, markers = document()
    # The run dies at its first merge, after its chunk summaries were made.
    fake_llm.state.fail_next(401, matching=prompts.COMBINE_SUMMARIES)

    job_id, outcome = run(small_context_app, text)
    assert outcome == "failed"
    chunk_calls = [c for c in fake_llm.state.requests if system(c) == prompts.CHUNK_SUMMARY]
    assert len(chunk_calls) > 1
    with small_context_app.app_context():
        assert store.reopen_job(job_id)  # a client's retry
        assert run_job(job_id) == "succeeded"

    answered = Counter((system(c), user(c)) for c in fake_llm.state.requests if c["usage"] is not None)
    assert answered and max(answered.values()) == 1, "no summary was paid for twice"
    assert all(
        sum(marker in user(c) for c in fake_llm.state.requests if system(c) == prompts.CHUNK_SUMMARY) == 1
        for marker in markers
    )


def test_a_context_exceeded_error_shrinks_the_chunks_and_tries_once_more(app, fake_llm):
    # LLM_CONTEXT_TOKENS says 128000 (the default), but the model holds far less.
    fake_llm.state.context_limit = CONTEXT
    text, _ = document(40)

    _, outcome = run(app, text)

    assert outcome == "succeeded"
    refused = [c for c in fake_llm.state.requests if c["usage"] is None]
    assert len(refused) == 1 and user(refused[0]) == text
    assert any(system(c) == prompts.CHUNK_SUMMARY for c in fake_llm.state.requests)


def test_a_model_whose_context_holds_not_even_the_prompt_fails_the_job_naming_the_setting(app, fake_llm):
    fake_llm.state.context_limit = 20
    text, _ = document(10)

    job_id, outcome = run(app, text)

    assert outcome == "failed"
    with app.app_context():
        job = store.get_job(job_id)
    assert job.status is JobStatus.FAILED and "LLM_CONTEXT_TOKENS" in job.error
    assert len(fake_llm.state.requests) == 1, "no retry in chunks too small to say anything"


def test_a_million_character_document_is_accepted(client, app):
    text = ("Staff must check every valve weekly. " * 30_000)[:1_000_000]

    response = client.post("/jobs/", json={"input_text": text})

    assert response.status_code == 201, response.get_json()
    assert app.config["MAX_INPUT_CHARS"] >= 1_000_000
    client.post(f"/jobs/{response.get_json()['event_id']}/cancel")


@pytest.mark.parametrize("max_tokens", [50, 300, 2000])
def test_chunks_fit_and_keep_every_paragraph_whole_when_it_fits(max_tokens):
    text, _ = document(60)

    chunks = chunking.split_into_chunks(text, max_tokens)

    assert all(chunking.estimate_tokens(chunk) <= max_tokens for chunk in chunks)
    assert " ".join(" ".join(chunks).split()) == " ".join(text.split()), "nothing lost, nothing reordered"
    if max_tokens >= 300:
        paragraphs = text.split("\n\n")
        assert all(any(p in chunk for chunk in chunks) for p in paragraphs)


def test_groups_to_merge_hold_two_summaries_at_least_so_a_reduction_always_ends():
    groups = chunking.group_to_fit(["x" * 400] * 5, max_tokens=50)
    assert [len(group) for group in groups] == [2, 3]


def test_a_refused_checkpoint_stops_paying_for_chunks(fake_llm):
    # What a cancel (or a lost lease) does mid-map: the store refuses the chunk summary.
    provider = OpenAIProvider(api_key="k", model="m", base_url=fake_llm.base_url, max_retries=0)
    text, _ = document()
    options = pipeline.Options(context_tokens=CONTEXT, map_concurrency=2)
    chunks = chunking.split_into_chunks(text, pipeline._input_budget(provider, options))
    threads_before = set(threading.enumerate())

    assert pipeline.summarize(provider, text, options, checkpoint=lambda *_: False) is None
    # The pipeline does not wait for the calls already in flight (a cancel must not): wait
    # for them here, so that they are counted too, and none reaches the fake after the next
    # test's reset.
    for thread in set(threading.enumerate()) - threads_before:
        if thread.name.startswith("llm-map"):
            thread.join(timeout=30)
    assert len(fake_llm.state.requests) < len(chunks) / 2
