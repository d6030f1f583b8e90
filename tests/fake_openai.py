"""A real HTTP server that speaks enough of the OpenAI API for jobsvc: `/v1/chat/completions`.

Tests steer it through a `FakeLLMState`: a delay per call, and a script of error
answers (status, code) served before normal answers resume. Every request is recorded.
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
    failures: deque[tuple[int, str | None, str | None]] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self.lock:
            self.delay = 0.0
            self.failures.clear()
            self.requests.clear()

    def fail_next(
        self, status: int, times: int = 1, code: str | None = None, matching: str | None = None
    ) -> None:
        """Answer the next `times` calls (that mention `matching`) with HTTP `status` and error `code`."""
        with self.lock:
            self.failures.extend([(status, code, matching)] * times)

    def _take_failure(self, messages: list[dict[str, str]]) -> tuple[int, str | None] | None:
        text = " ".join(m.get("content", "") for m in messages)
        for failure in self.failures:
            status, code, matching = failure
            if matching is None or matching in text:
                self.failures.remove(failure)
                return status, code
        return None

    def calls_for(self, text: str) -> list[dict[str, Any]]:
        """The recorded requests whose user message mentions `text`."""
        with self.lock:
            return [r for r in self.requests if any(text in m["content"] for m in r["messages"])]


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


def answer(messages: list[dict[str, str]]) -> str:
    """A deterministic answer: a summary that quotes the input, or a checklist of the summary."""
    system, user = messages[0]["content"], messages[-1]["content"]
    if "checklist" in system.lower():
        return "Here is the checklist:\n1. Act on: " + user[:80] + "\n2. Confirm it is done"
    return "SUMMARY OF " + user


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
            state.requests.append(
                {"model": body.get("model"), "messages": body.get("messages", []), "at": time.time()}
            )
            failure = state._take_failure(body.get("messages", []))
            delay = state.delay
        if delay:
            time.sleep(delay)
        if failure is not None:
            status, code = failure
            self._send(
                status,
                {"error": {"message": f"fake error {status}", "type": "fake_error", "code": code}},
            )
            return
        self._send(200, _reply(answer(body["messages"]), body.get("model", "fake-model")))


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
