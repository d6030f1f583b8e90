"""Where jobsvc may send a webhook: http(s) to a public address, checked at submit and at send."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from jobsvc.errors import UnsafeDestination


def check_destination(url: str, allow_private: bool) -> None:
    """Raise UnsafeDestination unless `url` is http(s) to a public address (or private is allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UnsafeDestination("callback_url must be an http or https URL with a host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)}
    except (OSError, ValueError) as exc:
        raise UnsafeDestination(f"callback_url host {parts.hostname!r} does not resolve.") from exc
    if allow_private:
        return
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise UnsafeDestination(
                f"callback_url resolves to {ip}, a loopback, private or link-local address; "
                "the server refuses those unless WEBHOOK_ALLOW_PRIVATE is set."
            )
