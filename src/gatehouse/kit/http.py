"""Small HTTP helpers shared by the routers and middleware."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Any

from gatehouse.errors import VersionConflict

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def sane_request_id(value: str | None) -> str | None:
    """A client's X-Request-ID is kept only if it cannot smuggle anything into logs."""
    if value and _SANE_REQUEST_ID.match(value):
        return value
    return None


def header_text(value: str | None) -> str | None:
    """A header value fit to store and show: control characters dropped (PostgreSQL
    refuses a NUL in text, and CR/LF or escapes have no place in a session list)."""
    if value is None:
        return None
    return _CONTROL.sub("", value) or None


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """The version an If-Match names; None when absent or `*` (any version)."""
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 18:
        raise VersionConflict("If-Match does not name the current version of this resource")
    return int(tag)


def address_key(address: str | None, ipv6_prefix: int = 64) -> str | None:
    """The key one client is counted under by the rate limiter and the login protection.

    IPv4 as is; IPv6 by its network of `ipv6_prefix` bits (a /64 by default: one
    subscriber gets a whole /64, so counting its addresses one by one would hand an
    attacker 2^64 budgets); an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a
    dual-stack socket reports) as the IPv4 address it is. Anything that is not an
    address ("testclient", a unix socket) is kept as it came.
    """
    if address is None:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        # By its integer: a zone index ("%eth0") names no other network.
        return str(ipaddress.IPv6Network((int(ip), ipv6_prefix), strict=False))
    return str(ip)


def parse_networks(items: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(item, strict=False) for item in items]


def client_ip(
    peer: str | None,
    forwarded_for: str | None,
    trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> str | None:
    """The client address: X-Forwarded-For counts only when it came through our proxies.

    Walk the chain from the right (nearest hop first) and stop at the first address
    that is not one of our proxies: everything left of it is the client's own claim.
    """
    if peer is None or not trusted or not _is_trusted(peer, trusted):
        return peer
    if not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _valid_ip(hop):
            return peer
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def is_trusted_proxy(
    peer: str | None, trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    """Whether the direct peer is one of our proxies, whose X-Forwarded-* we believe."""
    return peer is not None and _is_trusted(peer, trusted)


def _valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_trusted(address: str, trusted: Sequence[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
