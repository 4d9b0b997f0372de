"""A browser that may only use TURN relays still joins and receives video: real Chromium forced
to `iceTransportPolicy: "relay"`, a real coturn, credentials minted by Confide for the join."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import RunningServer, free_port
from tests.support.browser import chromium, until, video_stats
from tests.support.coturn import running_coturn
from tests.support.tls import make_certificates
from web.app import create_app
from web.bot import Bot, ColorTrack, ToneTrack
from web.settings import load_settings

pytestmark = pytest.mark.browser

# before the page's own scripts: every peer connection may use relay candidates only, and is
# kept where the test can read its statistics
FORCE_RELAY = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  function Relayed(config, ...rest) {
    const pc = new Native({ ...(config || {}), iceTransportPolicy: "relay" }, ...rest);
    window.__pcs.push(pc);
    return pc;
  }
  Relayed.prototype = Native.prototype;
  Object.setPrototypeOf(Relayed, Native);
  window.RTCPeerConnection = Relayed;
})();
"""

# the selected candidate pair of every connected peer connection, and its inbound video
SELECTED_PAIRS = """
async () => {
  const out = [];
  for (const pc of window.__pcs) {
    if (pc.connectionState !== "connected") continue;
    const stats = await pc.getStats();
    const byId = new Map();
    stats.forEach((s) => byId.set(s.id, s));
    let frames = 0;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
    });
    stats.forEach((s) => {
      if (s.type !== "transport" || !s.selectedCandidatePairId) return;
      const pair = byId.get(s.selectedCandidatePairId);
      const local = byId.get(pair.localCandidateId);
      const remote = byId.get(pair.remoteCandidateId);
      out.push({
        policy: pc.getConfiguration().iceTransportPolicy,
        state: pair.state, framesDecoded: frames,
        local: {type: local.candidateType, protocol: local.protocol,
                relayProtocol: local.relayProtocol, address: local.address, port: local.port},
        remote: {type: remote.candidateType, protocol: remote.protocol,
                 address: remote.address, port: remote.port},
      });
    });
  }
  return out;
}
"""


@pytest.fixture
async def turn_server(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, Any]]:
    certs = make_certificates(tmp_path / "certs")
    with running_coturn(certs) as coturn:
        settings = load_settings(
            tmp_path / "var", host="127.0.0.1", port=free_port(), dev=True, ice_loopback=True,
            turn_urls=coturn.urls(), turn_secret=coturn.secret, media_processes=0,
        )
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        try:
            yield RunningServer(app, runner, settings), coturn
        finally:
            await runner.cleanup()


async def test_a_relay_only_browser_receives_video_through_coturn(
    turn_server: tuple[RunningServer, Any],
) -> None:
    server, coturn = turn_server
    host = Bot(server.link("relay", "Clinician", role="host"), video=ColorTrack("green"),
               audio=ToneTrack())
    try:
        await host.connect()
        async with chromium() as browser:
            context = await browser.new_context()
            await context.add_init_script(FORCE_RELAY)
            page = await context.new_page()
            await page.goto(server.link("relay", "Robin"))
            await page.wait_for_function("() => window.confide && window.confide.stage === 'room'",
                                         timeout=20_000)
            # the join handed this browser TURN credentials of its own, valid as long as its grant
            (turn,) = await page.evaluate(
                "() => window.confide.iceServers.filter(s => String(s.urls).includes('turn:'))")
            robin_id = await page.evaluate("() => window.confide.me.id")
            assert turn["username"].endswith(":" + robin_id)
            assert turn["urls"] == coturn.urls()

            async def decoding() -> Any:
                stats = await video_stats(page, host.me["id"])
                return stats is not None and stats["decoded"] > 20 and stats

            await until(decoding, 45.0)
            pairs = await until(lambda: page.evaluate(SELECTED_PAIRS), 20.0)
            print("selected candidate pairs:", json.dumps(pairs))
            assert pairs and all(p["policy"] == "relay" for p in pairs)
            assert all(p["local"]["type"] == "relay" for p in pairs), pairs
            receiving = [p for p in pairs if p["framesDecoded"] > 20]
            assert receiving and receiving[0]["state"] == "succeeded"
            # the relayed address is one of coturn's relay ports
            low, high = coturn.relay_ports
            assert all(low <= p["local"]["port"] <= high for p in pairs), pairs
            await context.close()
    finally:
        await host.leave()
