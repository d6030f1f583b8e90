"""Where a webhook may go: each way around the destination check, attacked."""

from __future__ import annotations

import socket
import threading

import pytest

from jobsvc.core.destinations import check_destination
from jobsvc.errors import UnsafeDestination


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
        with pytest.raises(UnsafeDestination, match="did not resolve within"):
            check_destination("https://slow.example.com/in", allow_private=False)
        # The check gave up while the lookup was still waiting on the name server.
        assert not answered.is_set()
    finally:
        released.set()
