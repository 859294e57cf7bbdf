"""Which Host names and page origins the server trusts.

A server on 127.0.0.1 with no token is still reachable from any web page the user opens: the
browser sends a cross-origin form POST or opens a websocket without asking anyone, and DNS
rebinding (a name that resolves to 127.0.0.1 after the page has loaded) makes even reads
same-origin. Two checks close both doors: the `Host` header must name this server (its bound
address, this machine's own names on a loopback or wildcard bind, or `serve.allowed_hosts`),
and a request that changes state or opens a websocket must come from no browser page at all
(no `Origin`, as curl and the openai client send) or from the server's own page or
`serve.allowed_origins`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain"})
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})


def host_name(host_header: str) -> str:
    """The name in a `Host` header, lower-cased, without port or IPv6 brackets."""
    value = host_header.strip().lower()
    if value.startswith("["):  # [::1]:7860
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.rsplit(":", 1)[0]
    return value.rstrip(".")


def is_loopback(host: str) -> bool:
    name = host_name(host)
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def machine_names() -> set[str]:
    """This machine's own names and addresses: what a wildcard bind answers to."""
    names = {socket.gethostname().lower()}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:
        pass
    try:
        import psutil

        for addresses in psutil.net_if_addrs().values():
            for address in addresses:
                if address.family in (socket.AF_INET, socket.AF_INET6):
                    names.add(address.address.split("%", 1)[0].lower())
    except Exception:  # noqa: BLE001 - interfaces are a convenience; allowed_hosts is the rule
        pass
    return names


@dataclass(frozen=True)
class OriginPolicy:
    hosts: frozenset[str]
    any_host: bool
    origins: frozenset[str]
    any_origin: bool

    @classmethod
    def for_bind(
        cls, bind: str, allowed_hosts: Iterable[str] = (), allowed_origins: Iterable[str] = ()
    ) -> OriginPolicy:
        extra_hosts = {host_name(h) for h in allowed_hosts}
        names = {host_name(bind)} | extra_hosts
        if is_loopback(bind) or host_name(bind) in WILDCARD_BINDS:
            names |= LOOPBACK_NAMES
        if host_name(bind) in WILDCARD_BINDS:
            names |= machine_names()
        origins = {o.strip().rstrip("/").lower() for o in allowed_origins}
        return cls(
            hosts=frozenset(names - {"*"}),
            any_host="*" in extra_hosts,
            origins=frozenset(origins - {"*"}),
            any_origin="*" in origins,
        )

    def host_allowed(self, host_header: str | None) -> bool:
        """HTTP/1.1 requires Host; a request without one cannot be checked and is refused."""
        if host_header is None or not host_header.strip():
            return False
        return self.any_host or host_name(host_header) in self.hosts

    def origin_allowed(self, origin: str | None, host_header: str | None) -> bool:
        """No Origin: not a browser page (curl, SDKs). Otherwise the page must be this server's
        own (same host and port as the request was sent to) or an allowed one."""
        if origin is None:
            return True
        value = origin.strip().rstrip("/").lower()
        if value == "null":  # sandboxed frames, file:// pages, some redirects
            return self.any_origin
        if self.any_origin or value in self.origins:
            return True
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or host_header is None:
            return False
        return parts.netloc == host_header.strip().lower()
