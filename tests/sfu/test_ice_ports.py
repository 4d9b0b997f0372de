"""CONFIDE_ICE_PORT_RANGE: the server's ICE sockets bind only within the range, so a firewall
can name the media ports."""

from __future__ import annotations

import asyncio
import errno
import inspect
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import aioice.ice
import psutil
import pytest

from sfu.ice import bind_udp_in_range, set_port_range
from tests.support.proc import confide_server
from web.bot import Bot, ColorTrack, ToneTrack


def _free_udp_range(size: int) -> tuple[int, int]:
    """`size` consecutive UDP ports free on 127.0.0.1 right now."""
    for _ in range(200):
        first = random.randrange(30000, 60000 - size)
        socks = []
        try:
            for port in range(first, first + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return first, first + size - 1
    raise RuntimeError("no free UDP port range")


@pytest.fixture
def port_range() -> Iterator[tuple[int, int]]:
    ports = _free_udp_range(40)
    yield ports
    set_port_range(None)


def test_the_patch_point_still_fits_aioice() -> None:
    # an aioice upgrade that binds its host sockets differently must fail here, loudly
    source = inspect.getsource(aioice.ice.Connection.get_component_candidates)
    assert "loop = asyncio.get_running_loop()" in source
    assert "loop.create_datagram_endpoint(" in source and "local_addr=(address, 0)" in source


async def test_aioice_gathers_host_candidates_within_the_range(
    port_range: tuple[int, int],
) -> None:
    set_port_range(port_range)
    connections = [aioice.ice.Connection(ice_controlling=True) for _ in range(5)]
    try:
        for conn in connections:
            await conn.gather_candidates()
        ports = [c.port for conn in connections for c in conn.local_candidates]
        assert len(ports) == 5 and len(set(ports)) == 5
        assert all(port_range[0] <= p <= port_range[1] for p in ports), ports
    finally:
        for conn in connections:
            await conn.close()


async def test_a_full_range_is_a_clear_error(port_range: tuple[int, int]) -> None:
    first = port_range[0]
    held = []
    try:
        for port in (first, first + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", port))
            held.append(s)
        loop = asyncio.get_running_loop()
        with pytest.raises(OSError) as err:
            await bind_udp_in_range(loop, asyncio.DatagramProtocol, "127.0.0.1",
                                    (first, first + 1))
        assert err.value.errno == errno.EADDRINUSE
        assert f"no free UDP port in {first}-{first + 1}" in str(err.value)
    finally:
        for s in held:
            s.close()


async def test_the_servers_media_sockets_stay_in_the_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, port_range: tuple[int, int]
) -> None:
    first, last = port_range
    monkeypatch.setenv("CONFIDE_ICE_PORT_RANGE", f"{first}-{last}")
    monkeypatch.setenv("CONFIDE_MEDIA_PROCESSES", "0")
    async with confide_server(tmp_path / "data") as server:
        # the bots run here, outside the range: only the server is configured
        bots = [Bot(server.link("ports", name), video=ColorTrack(color), audio=ToneTrack())
                for name, color in (("Robin", "red"), ("Wren", "green"))]
        try:
            for bot in bots:
                await bot.connect()
            for _ in range(300):
                if all(any(p.video_frames > 10 for p in b.peers.values()) for b in bots):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("media did not flow")
            udp = psutil.Process(server.proc.pid).net_connections(kind="udp")
            ports = sorted(c.laddr.port for c in udp)
            # two peer connections per bot (publisher, subscriber), one socket each
            assert len(ports) >= 4, ports
            assert all(first <= p <= last for p in ports), (ports, port_range)
            # and it is those ports the server offered as candidates
            for bot in bots:
                for pc in (bot.pub_pc, bot.sub_pc):
                    assert pc is not None and pc.remoteDescription is not None
                    offered = [int(line.split()[5]) for line in pc.remoteDescription.sdp.split(
                        "\r\n") if line.startswith("a=candidate:")]
                    assert offered and all(first <= p <= last for p in offered), offered
        finally:
            for bot in bots:
                await bot.leave()
