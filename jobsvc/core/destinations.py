"""Where jobsvc may send a webhook, and the one address it connects to for it.

A callback_url is checked when the job is submitted and again before each delivery:
http(s), no user name or password in it, and, unless WEBHOOK_ALLOW_PRIVATE is set, port
80 or 443 and a host whose every address is public. The name is looked up once per check,
in a thread with a deadline (a slow name server cannot hold a web thread), and a delivery
connects to the address that check vetted, never to a second lookup (DNS rebinding).

"Public" is stricter than `ipaddress.is_global`: IPv6 forms that carry an IPv4 address
(IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64) are judged by the IPv4 address they
carry, and the local-use NAT64 prefix is refused.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import urlsplit

from jobsvc.errors import UnsafeDestination

#: Seconds a name lookup may take before the destination is refused.
DNS_TIMEOUT = 2.0
#: Ports a callback may use unless WEBHOOK_ALLOW_PRIVATE is set.
ALLOWED_PORTS = frozenset({80, 443})

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
    addresses = _resolve(parts.hostname, port, timeout)
    if not allow_private:
        for ip in addresses:
            if not is_public(ip):
                raise UnsafeDestination(
                    "callback_url resolves to a loopback, private or link-local address; "
                    "the server refuses those unless WEBHOOK_ALLOW_PRIVATE is set."
                )
    return Destination(url=url, host=parts.hostname, port=port, address=str(addresses[0]))


def is_public(ip: IPAddress) -> bool:
    """Whether `ip`, and any IPv4 address it carries, is a public unicast address."""
    if ip.is_multicast or not ip.is_global:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return True
    if ip in _NAT64_LOCAL:
        return False
    return all(is_public(carried) for carried in _carried_ipv4(ip))


def _carried_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address embeds, by the forms that route to them."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    carried = [v4 for v4 in (ip.ipv4_mapped, ip.sixtofour) if v4 is not None]
    if ip.teredo is not None:
        carried.extend(ip.teredo)
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        carried.append(low32)
    return carried


def _resolve(host: str, port: int, timeout: float) -> list[IPAddress]:
    """Every address of `host` (an IP literal is its own answer), looked up within `timeout`."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    pool = _resolvers.get(os.getpid())
    if pool is None:
        pool = _resolvers[os.getpid()] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="jobsvc-dns")
    lookup = pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout=max(timeout, 0.01))
    except FutureTimeout:
        lookup.cancel()
        raise UnsafeDestination(
            f"callback_url host {host!r} did not resolve within {timeout:g} seconds."
        ) from None
    except (OSError, UnicodeError) as exc:
        raise UnsafeDestination(f"callback_url host {host!r} does not resolve.") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise UnsafeDestination(f"callback_url host {host!r} does not resolve.")
    return addresses
