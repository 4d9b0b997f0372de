"""ICE configuration for the server's peers: explicit servers, optional loopback-only host."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

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
