"""A webhook receiver on loopback that records every delivery: shared by the webhook and outbox tests."""

from __future__ import annotations

import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver(ThreadingHTTPServer):
    """Records every delivery; answers with the scripted statuses first, then 204.

    With `hold_first`, the first request is held unanswered (as by a receiver that hangs)
    until `release` is set; `holding` is set while it waits.
    """

    daemon_threads = True

    def __init__(self, hold_first: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.deliveries: list[dict[str, Any]] = []
        self.statuses: deque[int] = deque()
        self.answered: list[int] = []
        self.hold_first = hold_first
        self.holding = threading.Event()
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.deliveries.append({"body": body, "headers": dict(self.headers)})
        if self.server.hold_first and len(self.server.deliveries) == 1:
            self.server.holding.set()
            self.server.release.wait(120)
            return  # hang up without an answer
        status = self.server.statuses.popleft() if self.server.statuses else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.answered.append(status)


def start_receiver(hold_first: bool = False) -> Receiver:
    """A receiver serving on a thread of its own; `stop_receiver` ends it."""
    server = Receiver(hold_first)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_receiver(server: Receiver) -> None:
    server.release.set()
    server.shutdown()
    server.server_close()
