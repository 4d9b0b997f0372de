"""Every bad input gets a typed error (or a 1008/1009 close) and disturbs nobody else."""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest

from sfu.grants import ALGORITHM, AUDIENCE, ISSUER, Permissions, mint_grant
from web.bot import Bot, ColorTrack, ToneTrack


async def _wait_for(predicate, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def witnesses(server) -> AsyncIterator[tuple[Bot, Bot]]:  # type: ignore[no-untyped-def]
    """Two participants streaming to each other: they must be unaffected by every test."""
    a = Bot(server.link("group", "Robin"), video=ColorTrack("red"), audio=ToneTrack())
    b = Bot(server.link("group", "Ash"), video=ColorTrack("green"), audio=ToneTrack())
    await a.connect()
    await b.connect()
    await _wait_for(lambda: b.peers.get(a.me["id"]) is not None and b.peers[a.me["id"]].video_frames > 5)
    yield a, b
    # still flowing after the bad input: frames keep arriving, no error reached them
    before = b.peers[a.me["id"]].video_frames
    await _wait_for(lambda: b.peers[a.me["id"]].video_frames > before + 5, 10.0)
    assert not a.errors and not b.errors
    assert set(a.participants) == {b.me["id"]} and set(b.participants) == {a.me["id"]}
    await a.leave()
    await b.leave()


class Raw:
    """A bare signaling socket for sending exactly the bytes a test wants."""

    def __init__(self, server) -> None:  # type: ignore[no-untyped-def]
        self.url = server.base_url.replace("http", "ws") + "/rtc"
        self.session = aiohttp.ClientSession()
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> Raw:
        self.ws = await self.session.ws_connect(self.url, max_msg_size=0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.session.close()

    async def send(self, data: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str(data if isinstance(data, str) else json.dumps(data))

    async def recv(self, timeout_s: float = 5.0) -> dict[str, Any]:
        assert self.ws is not None
        while True:
            msg = await self.ws.receive(timeout=timeout_s)
            if msg.type != aiohttp.WSMsgType.TEXT:
                return {"closed": self.ws.close_code, "type": str(msg.type)}
            data = dict(json.loads(msg.data))
            # room news is not what these tests are about
            if data.get("type") not in ("participant_joined", "participant_updated",
                                        "participant_left", "self_state"):
                return data

    async def expect_error(self, code: str) -> dict[str, Any]:
        msg = await self.recv()
        assert msg.get("type") == "error" and msg.get("code") == code, msg
        assert isinstance(msg.get("message"), str) and msg["message"]
        return msg

    async def expect_close(self, code: int) -> None:
        for _ in range(5):
            msg = await self.recv()
            if "closed" in msg:
                assert msg["closed"] == code, msg
                return
        raise AssertionError("socket not closed")

    async def join(self, grant: str) -> dict[str, Any]:
        await self.send({"type": "join", "v": 1, "grant": grant})
        msg = await self.recv()
        assert msg["type"] == "joined", msg
        return msg


def _grant(server, **kw: Any) -> str:  # type: ignore[no-untyped-def]
    # a raw socket does not answer offers: it only publishes nothing and subscribes to nothing
    kw.setdefault("permissions", Permissions(subscribe=False))
    return mint_grant(server.settings.grant_secret, room="group", display_name="Mallory", **kw)


async def test_malformed_json(server, witnesses) -> None:  # type: ignore[no-untyped-def]
    async with Raw(server) as raw:
        await raw.join(_grant(server))
        await raw.send("{not json")
        await raw.expect_error("bad_json")
        await raw.send("[1, 2]")
        await raw.expect_error("bad_message")
        await raw.send({"type": "ping"})
        assert (await raw.recv())["type"] == "pong"  # the socket still works


async def test_unknown_message_type(server, witnesses) -> None:  # type: ignore[no-untyped-def]
    async with Raw(server) as raw:
        await raw.join(_grant(server))
        await raw.send({"type": "teleport", "id": 7})
        msg = await raw.expect_error("unknown_type")
        assert msg["ref"] == 7


async def test_wrong_field_types(server, witnesses) -> None:  # type: ignore[no-untyped-def]
    async with Raw(server) as raw:
        await raw.join(_grant(server))
        await raw.send({"type": 5})
        await raw.expect_error("bad_message")
        await raw.send({"type": "publish_offer", "sdp": 12})
        await raw.expect_error("bad_field")
        await raw.send({"type": "mute", "kind": "video", "muted": "yes"})
        await raw.expect_error("bad_field")


async def test_message_over_64_kib_closes_1009(server, witnesses) -> None:  # type: ignore[no-untyped-def]
    async with Raw(server) as raw:
        await raw.join(_grant(server))
        await raw.send({"type": "ping", "pad": "x" * (65 * 1024)})
        await raw.expect_close(1009)


async def test_compressed_frame_inflating_past_limit_closes_1009(server, witnesses) -> None:  # type: ignore[no-untyped-def]
    # a small deflated frame that inflates to 1 MiB: the limit applies after inflation
    url = server.base_url.replace("http", "ws") + "/rtc"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, compress=15) as ws:
            payload = json.dumps({"type": "ping", "pad": "a" * (1024 * 1024)})
            assert len(zlib.compress(payload.encode())) < 64 * 1024
            await ws.send_str(payload, compress=15)
            msg = await ws.receive(timeout=5)
            while msg.type == aiohttp.WSMsgType.TEXT:
                msg = await ws.receive(timeout=5)
            assert ws.close_code == 1009


@pytest.mark.parametrize(
    "case, code",
    [
        ("missing", "grant_missing"),
        ("expired", "grant_expired"),
        ("not_yet_valid", "grant_not_yet_valid"),
        ("alg_none", "grant_bad_algorithm"),
        ("wrong_secret", "grant_bad_signature"),
        ("wrong_audience", "grant_wrong_audience"),
        ("wrong_room", "grant_wrong_room"),
        ("garbage", "invalid_grant"),
    ],
)
async def test_bad_grants_are_refused_with_1008(server, witnesses, case: str, code: str) -> None:  # type: ignore[no-untyped-def]
    secret = server.settings.grant_secret
    now = time.time()
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": "p_x", "room": "group", "name": "Mallory",
        "role": "host", "perms": ["publish_audio", "publish_video", "subscribe"],
        "iat": int(now), "nbf": int(now) - 5, "exp": int(now) + 60, "jti": f"j-{case}",
    }
    join: dict[str, Any] = {"type": "join", "v": 1}
    if case == "expired":
        join["grant"] = _grant(server, now=now - 3600, ttl_s=60)
    elif case == "not_yet_valid":
        join["grant"] = _grant(server, now=now + 3600)
    elif case == "alg_none":
        join["grant"] = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    elif case == "wrong_secret":
        join["grant"] = jwt.encode(claims, "not-the-secret-" * 3, algorithm=ALGORITHM)
    elif case == "wrong_audience":
        join["grant"] = jwt.encode({**claims, "aud": "someone-else"}, secret, algorithm=ALGORITHM)
    elif case == "wrong_room":
        join["grant"] = _grant(server)
        join["room"] = "another-group"
    elif case == "garbage":
        join["grant"] = "abc.def.ghi"
    async with Raw(server) as raw:
        await raw.send(join)
        await raw.expect_error(code)
        await raw.expect_close(1008)
    # the refused socket never joined: the witnesses see nobody new
    a, _ = witnesses
    assert all(p["display_name"] != "Mallory" for p in a.participants.values())


async def test_replayed_grant_is_refused_without_disturbing_holder(server, witnesses) -> None:  # type: ignore[no-untyped-def]
    grant = _grant(server)
    async with Raw(server) as holder, Raw(server) as thief:
        await holder.join(grant)
        await thief.send({"type": "join", "v": 1, "grant": grant})
        await thief.expect_error("grant_replayed")
        await thief.expect_close(1008)
        await holder.send({"type": "ping"})
        assert (await holder.recv())["type"] == "pong"


async def test_a_resume_token_must_match_exactly(server, witnesses) -> None:  # type: ignore[no-untyped-def]
    grant = _grant(server)
    async with Raw(server) as holder:
        joined = await holder.join(grant)
        token = joined["resume"]
    await asyncio.sleep(0.3)
    # the holder dropped; a token that is right but for its last character is no token
    near = token[:-1] + ("A" if token[-1] != "A" else "B")
    for wrong in (near, token[:-1], token + "x"):
        async with Raw(server) as thief:
            await thief.send({"type": "join", "v": 1, "grant": grant, "resume": wrong})
            await thief.expect_error("grant_replayed")
            await thief.expect_close(1008)
    async with Raw(server) as back:
        await back.send({"type": "join", "v": 1, "grant": grant, "resume": token})
        assert (await back.recv())["type"] == "joined"


async def test_deeply_nested_json_is_a_typed_error(server, witnesses) -> None:  # type: ignore[no-untyped-def]
    async with Raw(server) as raw:
        await raw.join(_grant(server))
        for depth in (40, 30_000):
            await raw.send('{"type": "ping", "ts": ' + "[" * depth + "]" * depth + "}")
            await raw.expect_error("too_deep")
        await raw.send({"type": "ping"})
        assert (await raw.recv())["type"] == "pong"  # the socket still works


async def test_messages_before_join_are_refused(server, witnesses) -> None:  # type: ignore[no-untyped-def]
    async with Raw(server) as raw:
        await raw.send({"type": "publish_offer", "sdp": "v=0"})
        await raw.expect_error("not_joined")


async def test_malformed_sdp(server, witnesses) -> None:  # type: ignore[no-untyped-def]
    async with Raw(server) as raw:
        await raw.join(_grant(server))
        for sdp in ("hello", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "m=audio x\r\n" * 3):
            await raw.send({"type": "publish_offer", "sdp": sdp})
            await raw.expect_error("bad_sdp")


async def test_answer_in_wrong_state(server, witnesses) -> None:  # type: ignore[no-untyped-def]
    async with Raw(server) as raw:
        await raw.join(_grant(server))
        # no subscriber offer is outstanding: an answer is out of order
        await raw.send({"type": "subscribe_answer", "sdp": "v=0\r\n"})
        await raw.expect_error("unexpected_answer")
        await raw.send({"type": "join", "v": 1, "grant": _grant(server)})
        await raw.expect_error("already_joined")


async def test_flood_is_rate_limited_then_closed(server, witnesses) -> None:  # type: ignore[no-untyped-def]
    async with Raw(server) as raw:
        await raw.join(_grant(server))
        for _ in range(400):
            await raw.send({"type": "ping"})
        codes = []
        while True:
            msg = await raw.recv()
            if "closed" in msg:
                assert msg["closed"] == 1008
                break
            codes.append(msg.get("code") or msg["type"])
        assert "rate_limited" in codes
        # the burst allowance was served, the rest refused
        assert 30 <= codes.count("pong") < 120
