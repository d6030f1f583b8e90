"""A real HTTP server that speaks enough of the OpenAI API for jobsvc: `/v1/chat/completions`.

Tests steer it through a `FakeLLMState`: a delay per call (or per step), a script of error answers
(status, code) served before normal answers resume, a context limit (longer requests get
OpenAI's 400 `context_length_exceeded`), and misbehaviours of small models: checklists
answered in paragraphs, and answers that invent facts. Requests that ask for structured
output (`response_format` json_schema) get the checklist as a JSON object of items. Every
request is recorded.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeLLMState:
    """What the server does next, and what it has seen."""

    delay: float = 0.0
    #: Seconds a call of a step ("summary", "checklist") takes instead of `delay`.
    step_delays: dict[str, float] = field(default_factory=dict)
    #: Tokens (characters / 4) a request may hold; beyond it, HTTP 400 context_length_exceeded.
    context_limit: int | None = None
    #: How many of the next checklist answers come as paragraphs instead of a list.
    paragraphs: int = 0
    #: Answer markdown even when asked for JSON, as servers without structured outputs do.
    ignore_response_format: bool = False
    #: How many of the next answers, per step ("summary", "checklist"), invent facts.
    inventions: dict[str, int] = field(default_factory=dict)
    #: The most chat completions this server has been answering at once since the last reset.
    max_in_flight: int = 0
    #: Chat completions being answered now that arrived since the last reset.
    in_flight: int = 0
    #: Bumped by each reset: a request that arrived before it is no longer counted in flight.
    generation: int = 0
    failures: deque[tuple[int, str | None, str | None]] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self.lock:
            self.delay = 0.0
            self.step_delays.clear()
            self.context_limit = None
            # A request still sleeping from an earlier test must not count towards this one's.
            self.generation += 1
            self.in_flight = 0
            self.max_in_flight = 0
            self.paragraphs = 0
            self.ignore_response_format = False
            self.inventions.clear()
            self.failures.clear()
            self.requests.clear()

    def fail_next(
        self, status: int, times: int = 1, code: str | None = None, matching: str | None = None
    ) -> None:
        """Answer the next `times` calls (that mention `matching`) with HTTP `status` and error `code`."""
        with self.lock:
            self.failures.extend([(status, code, matching)] * times)

    def invent_facts(self, times: int = 1, step: str = "summary") -> None:
        """Make the next `times` answers of `step` (summary or checklist) state things not in the input."""
        with self.lock:
            self.inventions[step] = self.inventions.get(step, 0) + times

    def _take_failure(self, messages: list[dict[str, str]]) -> tuple[int, str | None] | None:
        text = " ".join(m.get("content", "") for m in messages)
        for failure in self.failures:
            status, code, matching = failure
            if matching is None or matching in text:
                self.failures.remove(failure)
                return status, code
        return None

    def _take_quirks(self, messages: list[dict[str, str]], structured: bool) -> tuple[bool, bool]:
        """Whether this answer invents facts, and whether it comes as paragraphs: (invent, paragraphs).

        Taken when the request arrives, under the lock that records it: a request that came
        before a reset is answered by the script it came under, never by the next test's.
        """
        step = step_of(messages)
        if self.inventions.get(step):
            self.inventions[step] -= 1
            return True, False
        if step == "checklist" and self.paragraphs and not structured:
            self.paragraphs -= 1
            return False, True
        return False, False

    def calls_for(self, text: str) -> list[dict[str, Any]]:
        """The recorded requests whose user message mentions `text`."""
        with self.lock:
            return [r for r in self.requests if any(text in m["content"] for m in r["messages"])]


INVENTED_SUMMARY = (
    "The regional law enforcement agency revised this policy in 1987 after consulting Brazilian "
    "auditors and marine biologists."
)
INVENTED_CHECKLIST = ["Notify the regional law enforcement agency", "Consult Brazilian auditors yearly"]
#: The opening of a checklist answered in paragraphs; its sentences become the items.
PARAGRAPHS_OPENING = "Thank you for sharing this summary with me."


def estimate_tokens(messages: list[dict[str, str]]) -> int:
    """Tokens of a request, estimated as the service's client does: characters / 4."""
    return sum(len(m.get("content") or "") for m in messages) // 4


def _reply(text: str, model: str) -> dict[str, Any]:
    prompt_tokens, completion_tokens = 40, len(text.split())
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _shortened(text: str, limit: int = 300) -> str:
    """`text`, cut at a word boundary after at most `limit` characters: a summary is shorter."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0]


def checklist_items(user: str) -> list[str]:
    """The checklist the fake answers for a summary, as items."""
    return ["Act on: " + user[:80], "Confirm it is done"]


def step_of(messages: list[dict[str, str]]) -> str:
    """Which step of the chain a request is: "checklist" or "summary"."""
    return "checklist" if "checklist" in messages[0]["content"].lower() else "summary"


def answer(
    messages: list[dict[str, str]], structured: bool = False, invent: bool = False, paragraphs: bool = False
) -> str:
    """A deterministic answer: a summary that quotes the input, or a checklist of the summary.

    `invent` answers with facts the input does not hold; `paragraphs` answers a checklist as prose.
    """
    user = messages[-1]["content"]
    step = step_of(messages)
    if step == "summary":
        return INVENTED_SUMMARY if invent else "SUMMARY OF " + _shortened(user)
    items = INVENTED_CHECKLIST if invent else checklist_items(user)
    if structured:
        return json.dumps({"items": items})
    if paragraphs:
        return (
            f"{PARAGRAPHS_OPENING} The most important thing is to act on what it says, namely "
            f"{user[:80].rstrip('.')}. When that is done, confirm it.\n\n"
            "Keeping to these steps every time makes the whole procedure safer for everyone involved."
        )
    return "Here is the checklist:\n" + "\n".join(f"{i}. {item}" for i, item in enumerate(items, 1))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        # For a benchmark in another process: the user message of every call, in order.
        if self.path.rstrip("/") != "/_calls":
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        with self.server.state.lock:
            requests = list(self.server.state.requests)
        self._send(200, {"calls": [r["messages"][-1]["content"] if r["messages"] else "" for r in requests]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        state = self.server.state
        with state.lock:
            record: dict[str, Any] = {
                "model": body.get("model"),
                "messages": body.get("messages", []),
                "response_format": body.get("response_format"),
                "max_tokens": body.get("max_tokens"),
                "at": time.time(),
                "usage": None,  # what the answer reported, for answered calls
            }
            state.requests.append(record)
            failure = state._take_failure(record["messages"])
            limit = state.context_limit
            tokens = estimate_tokens(record["messages"])
            structured = (body.get("response_format") or {}).get("type") == "json_schema"
            structured = structured and not state.ignore_response_format
            answered = failure is None and (limit is None or tokens <= limit)
            # The script's quirks are taken now, with the record, for the answer given below.
            invent, paragraphs = (False, False)
            if answered:
                invent, paragraphs = state._take_quirks(record["messages"], structured)
            delay = (
                state.step_delays.get(step_of(record["messages"]), state.delay)
                if state.step_delays
                else state.delay
            )
            generation = state.generation
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if delay:
                time.sleep(delay)
        finally:
            with state.lock:
                if state.generation == generation:  # else a reset has already stopped counting it
                    state.in_flight -= 1
        if failure is not None:
            status, code = failure
            self._send(
                status,
                {"error": {"message": f"fake error {status}", "type": "fake_error", "code": code}},
            )
            return
        if limit is not None and tokens > limit:
            message = (
                f"This model's maximum context length is {limit} tokens. However, your messages "
                f"resulted in {tokens} tokens. Please reduce the length of the messages."
            )
            error = {"message": message, "type": "invalid_request_error", "code": "context_length_exceeded"}
            self._send(400, {"error": error})
            return
        text = answer(body["messages"], structured, invent, paragraphs)
        reply = _reply(text, body.get("model", "fake-model"))
        with state.lock:
            record["usage"] = reply["usage"]
        self._send(200, reply)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or get killed mid-call hang up on us; that is their business.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def __init__(self, state: FakeLLMState, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.state = state


class FakeOpenAIServer:
    """The server on a free loopback port, served from a background thread."""

    def __init__(self, port: int = 0, delay: float = 0.0) -> None:
        self.state = FakeLLMState(delay=delay)
        self._server = _Server(self.state, port)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL should be to reach this server."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    """Serve on a fixed port until Ctrl-C, then print how many calls it answered."""
    import argparse

    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible server for jobsvc.")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per call")
    args = parser.parse_args()
    server = FakeOpenAIServer(port=args.port, delay=args.delay)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"fake OpenAI server on {server.base_url}", flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        print(f"chat completions served: {len(server.state.requests)}", flush=True)


if __name__ == "__main__":
    main()
