"""One delivery attempt, run in this process against hostile receivers: bounded, pinned, mute.

Each test ends a job with a callback_url and calls `deliver_webhook` itself, as a
delivery slot would; the receivers are real sockets on loopback.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpcore
import pytest
from flask import Flask

from jobsvc.core import store
from jobsvc.core.destinations import check_destination
from jobsvc.worker.deliveries import MAX_ANSWER_BYTES, NO_ANSWER, deliver_webhook, send
from tests.conftest import fresh_app

SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLWRlbGl2ZXJpZXM="


class RawReceiver:
    """A TCP server on loopback that hands each connection to `handle` in a thread of its own."""

    def __init__(self, handle: Callable[[socket.socket], None], tls: ssl.SSLContext | None = None) -> None:
        self.handle = handle
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.requests: list[bytes] = []
        self.done = threading.Event()
        self.error: BaseException | None = None
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.tls is not None:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                self.requests.append(read_request(conn))
                self.handle(conn)
            except OSError as exc:  # ssl.SSLError included
                self.error = exc
            finally:
                self.done.set()

    def close(self) -> None:
        self.listener.close()


def read_request(conn: socket.socket) -> bytes:
    """The request's head and body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def raw_receiver() -> Iterator[Callable[[Callable[[socket.socket], None]], RawReceiver]]:
    started: list[RawReceiver] = []

    def start(handle: Callable[[socket.socket], None], tls: ssl.SSLContext | None = None) -> RawReceiver:
        receiver = RawReceiver(handle, tls)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


@pytest.fixture(scope="module")
def delivery_app(stack_env, tmp_path_factory) -> Flask:
    folder = tmp_path_factory.mktemp("deliveries")
    env = {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{folder}/deliveries.sqlite3",
        "QUEUE_NAME": "deliveries-in-process",  # no worker listens: retries just wait there
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_ALLOW_PRIVATE": "true",  # the receivers are on loopback
        "WEBHOOK_RETRY_DELAYS": "60",
        "WEBHOOK_TIMEOUT": "2",
    }
    return fresh_app(env)


def ended_job(app: Flask, url: str) -> str:
    """A job with this callback_url that has just ended (canceled), so it owes a delivery."""
    with app.app_context():
        job, _ = store.create_job(f"Wear gloves {uuid.uuid4()}.", callback_url=url)
        assert store.cancel_job(job.id)
        return job.id


def attempt(app: Flask, job_id: str) -> tuple[str, dict[str, Any]]:
    """One delivery attempt as a slot runs it: what it did, and the job's webhook state after."""
    with app.app_context():
        outcome = deliver_webhook(job_id)
        job = store.get_job(job_id)
        assert job is not None and job.webhook is not None
        return outcome, job.webhook


def answer(status: int = 204) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())

    return handle


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_total_deadline(delivery_app, raw_receiver):
    # One byte every half second: each read succeeds, so only a deadline for the whole attempt ends it.
    answer_bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Padding: " + b"x" * 40 + b"\r\n\r\n"

    def trickle(conn: socket.socket) -> None:
        for byte in answer_bytes:
            conn.sendall(bytes([byte]))
            time.sleep(0.5)

    receiver = raw_receiver(trickle)
    job_id = ended_job(delivery_app, receiver.url)

    outcome, webhook = attempt(delivery_app, job_id)

    assert not receiver.done.is_set(), "the attempt lasted as long as the receiver trickled"
    assert outcome == "failed"
    assert webhook["last_error"] == NO_ANSWER


def test_an_answer_of_10_mb_is_not_read_past_64_kib(delivery_app, raw_receiver):
    size = 10 * 1024 * 1024

    def flood(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode() + b"x" * size)

    receiver = raw_receiver(flood)
    job_id = ended_job(delivery_app, receiver.url)

    outcome, webhook = attempt(delivery_app, job_id)

    assert (outcome, webhook["state"]) == ("delivered", "delivered")
    receiver.done.wait(10)
    # The attempt hung up long before the receiver could push its 10 MB through.
    assert isinstance(receiver.error, ConnectionError), receiver.error


def test_an_attempt_reads_at_most_64_kib_of_the_answer(raw_receiver):
    size = 10 * 1024 * 1024

    def flood(conn: socket.socket) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode() + b"x" * size)

    receiver = raw_receiver(flood)
    destination = check_destination(receiver.url, allow_private=True)

    reply = send(destination, b"{}", {"Content-Type": "application/json"}, time.monotonic() + 5)

    assert reply.status == 200
    assert 0 < reply.bytes_read <= MAX_ANSWER_BYTES


def test_refused_and_timed_out_connections_record_the_same_reason(delivery_app, raw_receiver):
    closed = socket.create_server(("127.0.0.1", 0))
    refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    closed.close()  # nothing listens there now: connection refused
    silent = raw_receiver(lambda conn: time.sleep(5))  # accepts, reads, never answers

    refused = attempt(delivery_app, ended_job(delivery_app, refused_url))
    timed_out = attempt(delivery_app, ended_job(delivery_app, silent.url))

    assert refused[0] == timed_out[0] == "failed"
    assert refused[1]["last_error"] == timed_out[1]["last_error"] == NO_ANSWER


def test_an_http_error_records_only_its_status(delivery_app, raw_receiver):
    receiver = raw_receiver(answer(503))

    outcome, webhook = attempt(delivery_app, ended_job(delivery_app, receiver.url))

    assert outcome == "failed"
    assert webhook["last_error"] == f"{NO_ANSWER} (HTTP 503)"


def test_the_proxy_from_the_environment_is_ignored(delivery_app, raw_receiver, monkeypatch):
    receiver = raw_receiver(answer(204))
    proxy = raw_receiver(answer(204))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    outcome, _ = attempt(delivery_app, ended_job(delivery_app, receiver.url))

    assert outcome == "delivered"
    assert len(receiver.requests) == 1 and proxy.requests == []


def test_a_name_is_looked_up_once_and_the_vetted_address_is_the_one_connected(delivery_app, monkeypatch):
    # DNS rebinding: the name server answers public for the check, then loopback for the connection.
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1"])
    lookups: list[str] = []
    connections: list[tuple[str, int]] = []
    real_lookup = socket.getaddrinfo

    def rebinding_lookup(host, port, *args, **kwargs):
        if host != "rebind.example":  # Redis, say
            return real_lookup(host, port, *args, **kwargs)
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    def no_network(address, *args, **kwargs):
        connections.append(address)
        raise ConnectionRefusedError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_lookup)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setitem(delivery_app.config, "WEBHOOK_ALLOW_PRIVATE", False)

    outcome, _ = attempt(delivery_app, ended_job(delivery_app, "http://rebind.example/hook"))

    assert outcome == "failed"
    assert lookups == ["rebind.example"]
    assert connections == [("93.184.216.34", 80)]


@pytest.fixture
def names(monkeypatch) -> dict[str, str]:
    """Host names this test's resolver answers (with the given address); others resolve as usual."""
    table: dict[str, str] = {}
    real_lookup = socket.getaddrinfo

    def lookup(host, port, *args, **kwargs):
        if host in table:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port))]
        return real_lookup(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return table


@pytest.fixture
def tls_receiver(tmp_path, raw_receiver):
    """An https receiver on loopback with a certificate for hooks.test, and a client context trusting it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
         "-out", str(cert), "-subj", "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server_names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, context: server_names.append(name)
    receiver = raw_receiver(answer(204), tls=server_context)
    receiver.server_names = server_names  # type: ignore[attr-defined]
    return receiver, ssl.create_default_context(cafile=str(cert))


def test_https_to_the_vetted_address_names_the_host_for_sni_and_the_certificate(tls_receiver, names):
    receiver, client_context = tls_receiver
    names["hooks.test"] = "127.0.0.1"
    destination = check_destination(f"https://hooks.test:{receiver.port}/hook", allow_private=True)

    reply = send(destination, b"{}", {}, time.monotonic() + 5, ssl_context=client_context)

    assert reply.status == 204
    assert receiver.server_names == ["hooks.test"]
    assert f"Host: hooks.test:{receiver.port}".encode() in receiver.requests[0]


def test_https_refuses_a_certificate_for_another_host(tls_receiver, names):
    receiver, client_context = tls_receiver
    names["other.test"] = "127.0.0.1"
    destination = check_destination(f"https://other.test:{receiver.port}/hook", allow_private=True)

    with pytest.raises(httpcore.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        send(destination, b"{}", {}, time.monotonic() + 5, ssl_context=client_context)

    assert receiver.requests == []


def test_a_delivery_sends_nothing_once_the_job_runs_again(delivery_app, raw_receiver):
    receiver = raw_receiver(answer(204))
    job_id = ended_job(delivery_app, receiver.url)
    with delivery_app.app_context():
        assert store.reopen_job(job_id)  # retried before its delivery ran: not terminal now

    outcome, webhook = attempt(delivery_app, job_id)

    assert outcome == "nothing due"
    assert receiver.requests == []
    assert (webhook["state"], webhook["attempts"]) == ("pending", 0)
