"""Which URLs a webhook may target: SSRF protection.

A webhook makes Gatehouse send requests wherever an admin points it, from inside the
network it runs in. Unless `webhook_allow_private_targets` is on, a target must be
http(s) without credentials, and every address its host resolves to must be public:
not loopback, private, link-local, CGNAT, multicast, reserved or unspecified, in IPv4
or IPv6 (including IPv4 embedded in IPv6: mapped, 6to4, NAT64). The check runs when a
subscription is saved and again for every connection, after DNS resolution, on the
address actually connected to (a name that resolved to a public address yesterday may
resolve to 127.0.0.1 today: DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
_SCHEMES = frozenset({"http", "https"})
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# RFC 6761: these names are the local machine whatever DNS says.
_LOCAL_NAMES = ("localhost", "localhost.", "localhost.localdomain")


class TargetRefused(Exception):
    """The URL may not be a webhook target; the message is safe to show and store."""


class TargetUnresolvable(Exception):
    """The target's host name does not resolve (now)."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    # IDNA-encoded host name or IP literal (without brackets), as connected to.
    host: str
    port: int


def parse_url(url: str) -> Target:
    """The URL's scheme, host and port; ValueError (a safe message) if it is no target."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    if _CONTROL_OR_SPACE.search(url):
        raise ValueError("must not contain spaces or control characters")
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
    except (httpx.InvalidURL, ValueError, UnicodeError, TypeError):
        raise ValueError("must be an absolute http:// or https:// URL") from None
    if parsed.scheme not in _SCHEMES:
        raise ValueError("must be an absolute http:// or https:// URL")
    if not host:
        raise ValueError("must name a host")
    if parsed.userinfo:
        raise ValueError("must not contain a user name or password")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return Target(scheme=parsed.scheme, host=host.strip("[]"), port=port)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    # Deprecated IPv4-compatible form, ::a.b.c.d.
    if int(ip) >> 32 == 0:
        return ipaddress.IPv4Address(int(ip))
    return None


def is_forbidden(ip: IPAddress) -> bool:
    """Whether `ip` is anything but a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and is_forbidden(embedded):
            return True
        if ip.is_site_local:
            return True
    if ip in _CGNAT:
        return True
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve(host: str, port: int, within: float) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order (no duplicates)."""
    literal = ip_literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(within):
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
    except (OSError, TimeoutError, UnicodeError):
        raise TargetUnresolvable(f"cannot resolve the host {host}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ip_literal(str(info[4][0]))
        if ip is not None and ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise TargetUnresolvable(f"cannot resolve the host {host}")
    return addresses


def refuse_local_name(host: str) -> None:
    name = host.lower()
    if name in _LOCAL_NAMES or name.rstrip(".").endswith(".localhost"):
        raise TargetRefused(
            f"{host} is the local machine, not a public address; private targets are not allowed"
        )


def vet(host: str, addresses: list[IPAddress]) -> list[IPAddress]:
    """`addresses` if all are public; TargetRefused if any is not (naming which)."""
    for ip in addresses:
        if is_forbidden(ip):
            shown = host if str(ip) == host else f"{host} resolves to {ip}, which"
            raise TargetRefused(f"{shown} is not a public address; private targets are not allowed")
    return addresses


async def vetted_addresses(host: str, port: int, within: float) -> list[IPAddress]:
    """Resolve `host` and return its addresses, refusing any non-public one."""
    refuse_local_name(host)
    return vet(host, await resolve(host, port, within))


async def check_url(url: str, *, allow_private: bool, within: float) -> None:
    """The rule at create and update: TargetRefused if `url` may not be a target.

    A name that does not resolve now is accepted (its DNS may not exist yet); every
    delivery checks again anyway, after resolution, before it connects.
    """
    try:
        target = parse_url(url)
    except ValueError as exc:
        raise TargetRefused(str(exc)) from None
    if allow_private:
        return
    try:
        await vetted_addresses(target.host, target.port, within)
    except TargetUnresolvable:
        return


def origin(url: str) -> str:
    """scheme://host:port of a target URL: what readonly callers and the audit trail see.

    A path or query may carry a credential of the receiver's (hooks.example.com/T0/B0/
    <token>, ?key=...), so neither is shown or recorded; the port always is, so two
    receivers on one host stay apart.
    """
    target = parse_url(url)
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{target.scheme}://{host}:{target.port}"
