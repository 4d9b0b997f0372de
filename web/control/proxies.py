"""Reverse proxies the service believes, and the client address and scheme behind them.

Behind a proxy every connection comes from the proxy's address: login throttling keyed on
it would lock the whole trust out after one person's typos, and the audit log would name the
proxy. With CONFIDE_TRUSTED_PROXIES set, X-Forwarded-For is read from the right: hops added
by trusted proxies are skipped, and the first hop no trusted proxy vouches for is the client.
Anything to its left was written by the client and proves nothing. A connection from an
address that is not a trusted proxy is its own client, whatever headers it sends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The networks whose forwarding headers are believed (none by default)."""

    def __init__(self, cidrs: Iterable[str] = ()) -> None:
        self.networks: list[IpNetwork] = [ipaddress.ip_network(c, strict=False) for c in cidrs]

    def trusts(self, address: str | None) -> bool:
        if not address or not self.networks:
            return False
        ip = _ip(address)
        return ip is not None and any(ip in net for net in self.networks)

    def client(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        """The client's address: `peer`, or the rightmost X-Forwarded-For hop that no trusted
        proxy vouches for (`forwarded_for`: every X-Forwarded-For header, in order)."""
        if not peer:
            return "unknown"
        if not self.trusts(peer):
            return _normal(peer)
        hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
        nearest = _normal(peer)
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                # a malformed hop: nothing beyond it is vouched for; the last proxy is the
                # best we know (never the garbage, which a client could vary at will)
                return nearest
            if not any(ip in net for net in self.networks):
                return str(ip)
            nearest = str(ip)
        return nearest

    def scheme(self, peer: str | None, own_scheme: str, forwarded_proto: str | None) -> str:
        """"https" when the connection is TLS, or a trusted proxy says the client's was."""
        if own_scheme == "https":
            return "https"
        if forwarded_proto and self.trusts(peer):
            proto = forwarded_proto.split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                return proto
        return own_scheme


def _normal(address: str) -> str:
    ip = _ip(address)
    return str(ip) if ip is not None else address


TRUSTED_PROXIES = web.AppKey("trusted_proxies", TrustedProxies)


def _proxies(request: web.BaseRequest) -> TrustedProxies | None:
    try:
        return request.config_dict.get(TRUSTED_PROXIES)  # type: ignore[attr-defined,no-any-return]
    except (AttributeError, RuntimeError):
        return None


def client_address(request: web.BaseRequest) -> str:
    """The real client address of a request (see the module docstring)."""
    proxies = _proxies(request)
    if proxies is None:
        return _normal(request.remote) if request.remote else "unknown"
    return proxies.client(request.remote, request.headers.getall("X-Forwarded-For", []))


def is_https(request: web.BaseRequest) -> bool:
    """True when the client reached us over HTTPS (directly, or through a trusted proxy)."""
    proxies = _proxies(request)
    own = "https" if request.secure else "http"
    if proxies is None:
        return own == "https"
    return proxies.scheme(request.remote, own, request.headers.get("X-Forwarded-Proto")) == "https"
