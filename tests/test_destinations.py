"""Where a webhook may go: each way around the destination check, attacked, and what it costs a request."""

from __future__ import annotations

import logging
import socket
import threading
from collections import Counter

import pytest

from jobsvc.core.destinations import LOOKUPS_AT_ONCE, MAX_HOSTS, REFUSED_ADDRESS, check_destination
from jobsvc.errors import UnsafeDestination
from tests.conftest import fresh_app


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
        "http://[::ffff:a00:5]/",  # IPv4-mapped 10.0.0.5
        "http://[::127.0.0.1]/",  # IPv4-compatible loopback
        "http://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
        "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
        "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[64:ff9b:1::a00:5]/",  # local-use NAT64 of 10.0.0.5
    ],
)
def test_ipv6_forms_that_carry_a_private_ipv4_are_refused(url):
    with pytest.raises(UnsafeDestination, match="WEBHOOK_ALLOW_PRIVATE"):
        check_destination(url, allow_private=False)


@pytest.mark.parametrize(
    "url", ["http://[::1/", "http://[not-an-address]/", "http://host:99999/", "http://host:x/"]
)
def test_a_broken_url_is_refused_as_unsafe_not_as_a_crash(url):
    with pytest.raises(UnsafeDestination, match=r"not a valid URL|invalid port"):
        check_destination(url, allow_private=True)


@pytest.mark.parametrize("url", ["http://[2002:808:808::1]/", "https://[64:ff9b::808:808]/"])
def test_ipv6_forms_that_carry_a_public_ipv4_pass(url):
    check_destination(url, allow_private=False)


@pytest.mark.parametrize("url", ["http://93.184.216.34:22/", "https://93.184.216.34:8443/hook"])
def test_ports_other_than_80_and_443_are_refused(url):
    with pytest.raises(UnsafeDestination, match="only 80 and 443"):
        check_destination(url, allow_private=False)


def test_any_port_is_allowed_with_webhook_allow_private():
    assert check_destination("http://127.0.0.1:8022/hook", allow_private=True).port == 8022


@pytest.mark.parametrize(
    "url",
    ["http://user:secret@93.184.216.34/", "http://user@93.184.216.34/", "http://93.184.216.34@127.0.0.1/"],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_a_user_name_or_password_in_the_url_is_refused(url, allow_private):
    with pytest.raises(UnsafeDestination, match="user name or password"):
        check_destination(url, allow_private=allow_private)


def test_a_name_is_vetted_and_its_vetted_address_kept(monkeypatch):
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]])
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: next(answers))

    destination = check_destination("https://hooks.example.com/in", allow_private=False)

    assert (destination.host, destination.port, destination.address) == (
        "hooks.example.com",
        443,
        "93.184.216.34",
    )


def test_a_name_with_any_private_address_is_refused(monkeypatch):
    infos = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 443)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: infos)

    with pytest.raises(UnsafeDestination, match="WEBHOOK_ALLOW_PRIVATE"):
        check_destination("https://mixed.example.com/in", allow_private=False)


def test_a_slow_name_server_is_not_waited_for(monkeypatch):
    released = threading.Event()
    answered = threading.Event()

    def slow_lookup(*args, **kwargs):
        released.wait(10)
        answered.set()
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]

    monkeypatch.setattr(socket, "getaddrinfo", slow_lookup)
    try:
        with pytest.raises(UnsafeDestination, match="that resolves"):
            check_destination("https://slow.example.com/in", allow_private=False)
        # The check gave up while the lookup was still waiting on the name server.
        assert not answered.is_set()
    finally:
        released.set()


PUBLIC = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]
PRIVATE = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 443))]


class NameServer:
    """What socket.getaddrinfo answers for names under .example; anything else (Redis) is real.

    `missing.example` does not exist, `internal.example` is private, `slow*.example` answers
    only once released, every other name is public. `asked` counts lookups by name.
    """

    def __init__(self) -> None:
        self.real = socket.getaddrinfo
        self.asked: Counter[str] = Counter()
        self.released = threading.Event()

    def __call__(self, host, *args, **kwargs):
        if not str(host).endswith(".example"):
            return self.real(host, *args, **kwargs)
        self.asked[host] += 1
        if host == "missing.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if host.startswith("slow"):
            self.released.wait(30)
        return PRIVATE if host == "internal.example" else PUBLIC


@pytest.fixture
def name_server(monkeypatch):
    server = NameServer()
    monkeypatch.setattr(socket, "getaddrinfo", server)
    yield server
    server.released.set()  # no resolver thread stays blocked after the test


@pytest.fixture
def signing_app(stack_env, tmp_path):
    """An app that can sign callbacks, on an empty database and a queue nobody listens on."""
    env = {
        **stack_env,
        "DATABASE_URL": f"sqlite:///{tmp_path}/dest.sqlite3",
        "QUEUE_NAME": "unattended",
        "WEBHOOK_SECRET": "whsec_dGVzdC1zZWNyZXQ=",
    }
    return fresh_app(env).test_client()


def callback_errors(response) -> object:
    assert response.status_code == 422, response.get_json()
    return response.get_json()["errors"]["json"]


@pytest.mark.parametrize(
    ("host", "logged"),
    [
        ("missing.example", "does not resolve"),
        ("internal.example", "non-public 10.0.0.5"),
        ("slow.example", "no answer within"),
    ],
)
def test_a_refused_address_gets_one_message_whatever_the_reason_which_only_the_log_tells(
    signing_app, name_server, caplog, monkeypatch, host, logged
):
    caplog.set_level(logging.INFO, logger="jobsvc.core.destinations")
    # Alembic's fileConfig, run in this process by create_schema, disables loggers that existed then.
    monkeypatch.setattr(logging.getLogger("jobsvc.core.destinations"), "disabled", False)

    response = signing_app.post("/jobs/", json={"input_text": "x", "callback_url": f"https://{host}/hook"})

    assert callback_errors(response) == {"callback_url": [REFUSED_ADDRESS]}
    assert logged in caplog.text and host in caplog.text


def test_a_batch_looks_each_distinct_callback_host_up_once(signing_app, name_server):
    items = [
        {"input_text": f"Job {n}.", "callback_url": f"https://hooks-{n % 3}.example/in/{n}"}
        for n in range(90)
    ]

    response = signing_app.post("/jobs/batch", json={"items": items})

    assert response.status_code == 201, response.get_json()
    assert name_server.asked == {"hooks-0.example": 1, "hooks-1.example": 1, "hooks-2.example": 1}


def test_a_batch_names_its_refused_items_by_index_with_the_one_message(signing_app, name_server):
    hosts = ["hooks.example", "missing.example", "hooks.example", "internal.example"]
    items = [{"input_text": "x", "callback_url": f"https://{host}/in"} for host in hosts]

    errors = callback_errors(signing_app.post("/jobs/batch", json={"items": items}))

    assert errors == {
        "items": {"1": {"callback_url": [REFUSED_ADDRESS]}, "3": {"callback_url": [REFUSED_ADDRESS]}}
    }


def test_a_batch_naming_more_than_max_hosts_callback_hosts_is_refused_before_any_lookup(
    signing_app, name_server
):
    items = [
        {"input_text": "x", "callback_url": f"https://hooks-{n}.example/in"} for n in range(MAX_HOSTS + 1)
    ]

    errors = callback_errors(signing_app.post("/jobs/batch", json={"items": items}))

    assert f"at most {MAX_HOSTS}" in str(errors["items"])
    assert not name_server.asked


def test_a_batch_of_slow_names_leaves_the_resolver_to_other_requests(signing_app, name_server):
    items = [{"input_text": "x", "callback_url": f"https://slow-{n}.example/in"} for n in range(MAX_HOSTS)]

    batch = signing_app.post("/jobs/batch", json={"items": items})
    # While the batch's lookups still wait on the name server, another request's lookup is answered.
    single = signing_app.post("/jobs/", json={"input_text": "x", "callback_url": "https://fast.example/in"})

    assert set(callback_errors(batch)["items"]) == {str(n) for n in range(MAX_HOSTS)}
    assert single.status_code == 201, single.get_json()
    assert not name_server.released.is_set()
    # The batch never held more of the resolver than its share.
    assert (
        sum(count for host, count in name_server.asked.items() if host.startswith("slow")) <= LOOKUPS_AT_ONCE
    )
