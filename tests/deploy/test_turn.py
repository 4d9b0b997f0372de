"""Per-join TURN credentials against a real coturn running the shipped configuration:
allocations over UDP, TCP and TLS (through the shipped nginx SNI router, as on port 443),
refusals for expired or forged credentials and for peers in denied ranges."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioice import stun
from aioice.turn import TurnClientTcpProtocol, TurnClientUdpProtocol, create_turn_endpoint

from sfu.grants import Grant
from sfu.turn import TurnServers, turn_credentials
from tests.support.coturn import Coturn, running_coturn
from tests.support.nginx import TEST_TURN_NAME, running_nginx
from tests.support.servers import free_port
from tests.support.tls import Certificates, make_certificates


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def coturn(certs: Certificates) -> Iterator[Coturn]:
    with running_coturn(certs) as server:
        yield server


def _grant(expires_at: float, participant_id: str = "p_5f0c2a9e11") -> Grant:
    return Grant(room="r", participant_id=participant_id, display_name="Robin",
                 expires_at=expires_at)


def test_credentials_follow_the_turn_rest_scheme() -> None:
    servers = TurnServers(["turn:turn.example:3478?transport=udp"], "shared-secret")
    (entry,) = servers.for_grant(_grant(1_900_000_000.0))
    # username expiry:participant; password base64(HMAC-SHA1(secret, username))
    assert entry["username"] == "1900000000:p_5f0c2a9e11"
    assert entry["credential"] == turn_credentials(
        "shared-secret", "p_5f0c2a9e11", 1_900_000_000)[1]
    import base64
    import hashlib
    import hmac

    assert entry["credential"] == base64.b64encode(
        hmac.new(b"shared-secret", b"1900000000:p_5f0c2a9e11", hashlib.sha1).digest()).decode()
    # the pseudonym never reaches the TURN server
    assert "Robin" not in str(entry)


async def _allocate_udp(server: Coturn, username: str, password: str) -> TurnClientUdpProtocol:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: TurnClientUdpProtocol(("127.0.0.1", server.port), username=username,
                                      password=password, lifetime=600,
                                      channel_refresh_time=500),
        remote_addr=("127.0.0.1", server.port),
    )
    await protocol.connect()
    return protocol


async def test_a_joins_credentials_allocate_and_relay(coturn: Coturn) -> None:
    (entry,) = TurnServers(coturn.urls(), coturn.secret).for_grant(_grant(time.time() + 600))
    username, password = str(entry["username"]), str(entry["credential"])

    # a peer on loopback (the server side of a call) hears what the relay sends
    loop = asyncio.get_running_loop()
    heard: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    class Peer(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            heard.put_nowait((data, addr))

    peer_transport, _ = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    peer_addr = peer_transport.get_extra_info("sockname")
    for transport in ("udp", "tcp"):
        relay, _ = await create_turn_endpoint(
            asyncio.DatagramProtocol, ("127.0.0.1", coturn.port), username, password,
            transport=transport,
        )
        try:
            relayed = relay.get_extra_info("sockname")
            assert relayed[0] == "127.0.0.1"
            assert coturn.relay_ports[0] <= relayed[1] <= coturn.relay_ports[1]
            relay.sendto(f"via {transport}".encode(), peer_addr)
            data, source = await asyncio.wait_for(heard.get(), 10)
            assert data == f"via {transport}".encode() and source[1] == relayed[1]
        finally:
            relay.close()
    peer_transport.close()


async def test_expired_or_forged_credentials_are_refused(coturn: Coturn) -> None:
    servers = TurnServers(coturn.urls(), coturn.secret)
    (expired,) = servers.for_grant(_grant(time.time() - 30))
    with pytest.raises(stun.TransactionFailed) as err:
        await _allocate_udp(coturn, str(expired["username"]), str(expired["credential"]))
    assert err.value.response.error_code == 401
    # a valid-looking username with a password not made from the shared secret
    (forged,) = TurnServers(coturn.urls(), "not-the-secret").for_grant(
        _grant(time.time() + 600))
    with pytest.raises(stun.TransactionFailed) as err:
        await _allocate_udp(coturn, str(forged["username"]), str(forged["credential"]))
    assert err.value.response.error_code == 401


async def test_the_relay_cannot_reach_private_networks(coturn: Coturn) -> None:
    (entry,) = TurnServers(coturn.urls(), coturn.secret).for_grant(_grant(time.time() + 600))
    protocol = await _allocate_udp(coturn, str(entry["username"]), str(entry["credential"]))
    try:
        for private in ("10.1.2.3", "192.168.1.10", "172.16.0.5", "169.254.1.1"):
            with pytest.raises(stun.TransactionFailed) as err:
                await protocol.channel_bind(0x4001, (private, 5004))
            assert err.value.response.error_code == 403, private
        # the one peer the test allows is reachable
        await protocol.channel_bind(0x4002, ("127.0.0.1", 5004))
    finally:
        if protocol.refresh_task is not None:
            protocol.refresh_task.cancel()
        protocol.transport.close()


async def test_turn_over_tls_on_the_https_port_by_name(
    coturn: Coturn, certs: Certificates, tmp_path: Path
) -> None:
    # port 443 in production: the SNI router sends TLS for the TURN name to coturn, anything
    # else to the HTTPS server (no Confide needed to see that TURN gets through)
    with running_nginx(certs, confide_port=free_port(), turn_tls_port=coturn.tls_port) as nginx:
        (entry,) = TurnServers(coturn.urls(), coturn.secret).for_grant(
            _grant(time.time() + 600))
        relay, _ = await create_turn_endpoint(
            asyncio.DatagramProtocol, (TEST_TURN_NAME, nginx.https_port),
            str(entry["username"]), str(entry["credential"]),
            ssl=certs.client_context(), transport="tcp",
        )
        try:
            relayed = relay.get_extra_info("sockname")
            assert coturn.relay_ports[0] <= relayed[1] <= coturn.relay_ports[1]
        finally:
            relay.close()
        # expired credentials are refused on this path too
        (expired,) = TurnServers(coturn.urls(), coturn.secret).for_grant(
            _grant(time.time() - 30))
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            lambda: TurnClientTcpProtocol((TEST_TURN_NAME, nginx.https_port),
                                          username=str(expired["username"]),
                                          password=str(expired["credential"]),
                                          lifetime=600, channel_refresh_time=500),
            host=TEST_TURN_NAME, port=nginx.https_port, ssl=certs.client_context(),
        )
        with pytest.raises(stun.TransactionFailed) as err:
            await protocol.connect()
        assert err.value.response.error_code == 401
        protocol.transport.close()
