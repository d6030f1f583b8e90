"""Where jobsvc may send a webhook, and the one address it connects to for it.

A callback_url is checked when the job is submitted and again before each delivery:
http(s), no user name or password in it, and, unless WEBHOOK_ALLOW_PRIVATE is set, port
80 or 443 and a host whose every address is public. Each name is looked up once per check,
in the resolver threads under one deadline for the whole check (a slow name server cannot
hold a web thread), and a delivery connects to the address that check vetted, never to a
second lookup (DNS rebinding). A batch's callback hosts are checked together: each
distinct host once, a few at a time, so one request never holds the whole resolver.

Why an address was refused (no answer, no answer in time, a private address) goes to the
log only: the client gets one message for all of them, so answers cannot map which
internal names exist. Refusals of the URL's form (scheme, user name, port) say what is
wrong, as they reveal nothing.

"Public" is stricter than `ipaddress.is_global`: IPv6 forms that carry an IPv4 address
(IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64) are judged by the IPv4 address they
carry, and the local-use NAT64 prefix is refused.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urlsplit

from jobsvc.errors import UnsafeDestination

log = logging.getLogger(__name__)

#: Seconds one check may spend on name lookups, all its hosts together.
DNS_TIMEOUT = 2.0
#: Distinct callback hosts one check (one batch) may name.
MAX_HOSTS = 20
#: Lookups one check keeps in the resolver at once: a fraction of RESOLVER_THREADS.
LOOKUPS_AT_ONCE = 4
#: Resolver threads per process; a lookup the check stopped waiting for still holds one.
RESOLVER_THREADS = 16
#: Ports a callback may use unless WEBHOOK_ALLOW_PRIVATE is set.
ALLOWED_PORTS = frozenset({80, 443})
#: The client's answer for every refused address, whatever the reason (which goes to the log).
REFUSED_ADDRESS = (
    "callback_url must be a public http(s) address on port 80 or 443 that resolves; "
    "WEBHOOK_ALLOW_PRIVATE allows private ones."
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

# Lookups run here so that the caller can stop waiting; created per process (after a fork).
_resolvers: dict[int, ThreadPoolExecutor] = {}


@dataclass(frozen=True)
class Destination:
    """A vetted callback: the URL as given, and the address to connect to for its host."""

    url: str
    host: str
    port: int
    address: str


def check_destination(url: str, allow_private: bool, timeout: float = DNS_TIMEOUT) -> Destination:
    """The vetted destination of `url`; raises UnsafeDestination if jobsvc must not send there."""
    result = check_destinations([url], allow_private, timeout)[url]
    if isinstance(result, UnsafeDestination):
        raise result
    return result


def check_destinations(
    urls: Iterable[str], allow_private: bool, timeout: float = DNS_TIMEOUT
) -> dict[str, Destination | UnsafeDestination]:
    """Each distinct URL's vetted destination, or the refusal to give its sender.

    Raises UnsafeDestination, checking nothing, if the URLs name more than MAX_HOSTS hosts.
    """
    results: dict[str, Destination | UnsafeDestination] = {}
    targets: dict[str, tuple[str, int]] = {}
    for url in dict.fromkeys(urls):
        try:
            targets[url] = check_form(url, allow_private)
        except UnsafeDestination as refusal:
            results[url] = refusal
    hosts = {host for host, _ in targets.values()}
    if len(hosts) > MAX_HOSTS:
        raise UnsafeDestination(
            f"The callback_urls name {len(hosts)} different hosts; one request may name at most {MAX_HOSTS}."
        )
    addresses = _resolve_all(hosts, timeout)
    for url, (host, port) in targets.items():
        results[url] = _vet(url, host, port, addresses.get(host), allow_private)
    return results


def check_form(url: str, allow_private: bool) -> tuple[str, int]:
    """The host and port of `url` if its form is acceptable; raises UnsafeDestination saying what is not."""
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - parsing it raises for a broken [IPv6] host
    except ValueError:
        raise UnsafeDestination("callback_url is not a valid URL.") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UnsafeDestination("callback_url must be an http or https URL with a host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination("callback_url must not carry a user name or password.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeDestination("callback_url has an invalid port.") from None
    if not allow_private and port not in ALLOWED_PORTS:
        raise UnsafeDestination(
            f"callback_url port {port} is refused: only 80 and 443 are allowed unless "
            "WEBHOOK_ALLOW_PRIVATE is set."
        )
    return parts.hostname, port


def _vet(
    url: str, host: str, port: int, addresses: list[IPAddress] | None, allow_private: bool
) -> Destination | UnsafeDestination:
    if addresses is None:  # the lookup failed; _resolve_all logged why
        return UnsafeDestination(REFUSED_ADDRESS)
    if not allow_private:
        refused = [str(ip) for ip in addresses if not is_public(ip)]
        if refused:
            log.info("callback host %r refused: it resolves to non-public %s", host, ", ".join(refused))
            return UnsafeDestination(REFUSED_ADDRESS)
    return Destination(url=url, host=host, port=port, address=str(addresses[0]))


def is_public(ip: IPAddress) -> bool:
    """Whether `ip` is a public unicast address; an IPv6 form that carries an IPv4 address
    (mapped, 6to4, Teredo, NAT64) is judged by that IPv4 address alone, whatever
    `ipaddress.is_global` says of the form (Python versions disagree on 2002::/16)."""
    if ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        carried = _carried_ipv4(ip)
        if carried:
            return all(is_public(address) for address in carried)
    return ip.is_global


def _carried_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address embeds, by the forms that route to them."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    carried = [v4 for v4 in (ip.ipv4_mapped, ip.sixtofour) if v4 is not None]
    if ip.teredo is not None:
        carried.extend(ip.teredo)
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        carried.append(low32)
    return carried


def _resolver() -> ThreadPoolExecutor:
    pool = _resolvers.get(os.getpid())
    if pool is None:
        pool = _resolvers[os.getpid()] = ThreadPoolExecutor(
            max_workers=RESOLVER_THREADS, thread_name_prefix="jobsvc-dns"
        )
    return pool


def _resolve_all(hosts: Iterable[str], timeout: float) -> dict[str, list[IPAddress]]:
    """The addresses of each host that resolved within `timeout`, all hosts together.

    An IP literal is its own answer. Names are looked up LOOKUPS_AT_ONCE at a time; a host
    missing from the answer did not resolve (in time), and the log says which and why.
    """
    deadline = time.monotonic() + max(timeout, 0.01)
    answers: dict[str, list[IPAddress]] = {}
    names: list[str] = []
    for host in hosts:
        try:
            answers[host] = [ipaddress.ip_address(host)]
        except ValueError:
            names.append(host)
    waiting = iter(names)
    running: dict[Future[list[tuple]], str] = {}

    def start_next() -> None:
        host = next(waiting, None)
        if host is not None:
            running[_resolver().submit(socket.getaddrinfo, host, None, type=socket.SOCK_STREAM)] = host

    for _ in range(LOOKUPS_AT_ONCE):
        start_next()
    while running:
        left = deadline - time.monotonic()
        done, _ = wait(running, timeout=max(left, 0), return_when=FIRST_COMPLETED)
        if not done:
            break
        for lookup in done:
            host = running.pop(lookup)
            addresses = _addresses(host, lookup)
            if addresses:
                answers[host] = addresses
            if time.monotonic() < deadline:
                start_next()
    late = [*running.values(), *waiting]
    for lookup in running:
        lookup.cancel()
    if late:
        log.info("callback hosts refused: no answer within %g s: %s", timeout, ", ".join(map(repr, late)))
    return answers


def _addresses(host: str, lookup: Future[list[tuple]]) -> list[IPAddress]:
    try:
        infos = lookup.result()
    except (OSError, UnicodeError) as exc:
        log.info("callback host %r refused: it does not resolve (%s)", host, exc)
        return []
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        log.info("callback host %r refused: it resolves to no address", host)
    return addresses
