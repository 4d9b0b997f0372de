"""ICE configuration for the server's peers: explicit servers, optional loopback-only host
candidates, and the UDP port range their sockets bind (CONFIDE_ICE_PORT_RANGE).

The two patch points into aioice (its host address list and the event loop its candidate
gathering binds sockets with) live here and nowhere else; tests/sfu/test_ice.py checks that
aioice still has the shape they rely on.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import random
import re
import socket
import types
from collections.abc import Callable, Sequence
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCBundlePolicy

_original_get_host_addresses = aioice.ice.get_host_addresses
_loopback_only = False


def _loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    # aioice skips 127.0.0.1 on purpose; on a loopback-only deployment it is the only address
    if _loopback_only:
        return ["127.0.0.1"] if use_ipv4 else []
    return _original_get_host_addresses(use_ipv4, use_ipv6)


def set_loopback_only(enabled: bool) -> None:
    """Gather only 127.0.0.1 host candidates (development, tests, a loopback-only machine)."""
    global _loopback_only
    _loopback_only = enabled
    aioice.ice.get_host_addresses = _loopback_host_addresses


def loopback_only() -> bool:
    return _loopback_only


logger = logging.getLogger(__name__)
_port_range: tuple[int, int] | None = None


async def bind_udp_in_range(
    loop: asyncio.AbstractEventLoop,
    protocol_factory: Callable[[], asyncio.DatagramProtocol],
    host: str,
    ports: tuple[int, int],
) -> tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]:
    """A UDP endpoint on `host` at a free port within `ports` (inclusive)."""
    first, last = ports
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    count = last - first + 1
    # start anywhere: peers of one room then do not all probe the same low ports in turn
    start = random.randrange(count)
    for i in range(count):
        port = first + (start + i) % count
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        return await loop.create_datagram_endpoint(protocol_factory, sock=sock)
    logger.warning("no free UDP port in the ICE port range %d-%d on %s", first, last, host)
    raise OSError(errno.EADDRINUSE, f"no free UDP port in {first}-{last}")


class _RangeLoop:
    """The running loop as aioice's candidate gathering sees it: a socket it asks to bind
    at port 0 (any) is bound within the configured range instead."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ports: tuple[int, int]) -> None:
        self._loop = loop
        self._ports = ports

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_datagram_endpoint(
        self, protocol_factory: Callable[[], asyncio.DatagramProtocol],
        local_addr: tuple[str, int] | None = None, **kwargs: Any,
    ) -> tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]:
        if local_addr is None or local_addr[1] != 0 or kwargs:
            return await self._loop.create_datagram_endpoint(  # type: ignore[no-any-return]
                protocol_factory, local_addr=local_addr, **kwargs)
        return await bind_udp_in_range(self._loop, protocol_factory, local_addr[0], self._ports)


class _AsyncioForIce(types.ModuleType):
    """`asyncio` as aioice.ice sees it: the same module, but its running loop binds in range."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    def get_running_loop() -> Any:
        loop = asyncio.get_running_loop()
        return _RangeLoop(loop, _port_range) if _port_range is not None else loop


def set_port_range(ports: tuple[int, int] | None) -> None:
    """Bind the server's ICE host sockets only within `ports` (inclusive); None: any port."""
    global _port_range
    _port_range = ports
    if ports is not None and not isinstance(aioice.ice.asyncio, _AsyncioForIce):
        aioice.ice.asyncio = _AsyncioForIce("asyncio")  # type: ignore[attr-defined]


def port_range() -> tuple[int, int] | None:
    return _port_range


def rtc_configuration(ice_servers: Sequence[dict[str, object]]) -> RTCConfiguration:
    """An explicit configuration: never aiortc's implicit public STUN server."""
    servers = []
    for item in ice_servers:
        urls = item.get("urls")
        servers.append(
            RTCIceServer(
                urls=urls if isinstance(urls, (str, list)) else [],
                username=item.get("username") if isinstance(item.get("username"), str) else None,  # type: ignore[arg-type]
                credential=item.get("credential")
                if isinstance(item.get("credential"), str)
                else None,  # type: ignore[arg-type]
            )
        )
    # one transport for every track: a group room has many tracks per connection
    return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ .*$")


def keep_loopback_candidates(sdp: str) -> str:
    """Drop remote candidates that are not on loopback (loopback-only mode)."""
    out = []
    for line in sdp.splitlines():
        m = _CANDIDATE.match(line)
        if m:
            try:
                if not ipaddress.ip_address(m.group(1)).is_loopback:
                    continue
            except ValueError:
                # an mDNS name or garbage: unreachable on loopback
                continue
        out.append(line)
    return "\r\n".join(out) + "\r\n"
