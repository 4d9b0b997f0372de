"""Debian Chromium driven by Playwright, with the flags WebRTC needs on loopback."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

if TYPE_CHECKING:
    from tests.support.session import OpenSession

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# the browsers stand for members' own devices, which never share the server's cores. Here
# they do, so they run at the media workers' priority (sfu/worker_main.py WORKER_NICE): at
# the normal priority three browsers encoding and decoding video starved the niced workers
# on a slower machine, and a member's processed video stopped altogether
BROWSER_NICE = 19


def _niced_chromium() -> str:
    """A launcher that starts Chromium at `BROWSER_NICE` (written once per run)."""
    path = Path(tempfile.gettempdir()) / f"confide-chromium-nice{BROWSER_NICE}-{os.getuid()}"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}")
        tmp.write_text(f'#!/bin/sh\nexec nice -n {BROWSER_NICE} {CHROMIUM} "$@"\n')
        tmp.chmod(0o755)
        tmp.replace(path)
    return str(path)

BASE_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
    # Chrome honours only the last --disable-features, and Playwright passes its own first:
    # repeat Playwright's list with ours added
    "--disable-features="
    + ",".join(
        [
            "AvoidUnnecessaryBeforeUnloadCheckSync",
            "DestroyProfileOnBrowserClose",
            "HttpsUpgrades",
            "HttpsFirstBalancedModeAutoEnable",
            "LensOverlay",
            "MediaRouter",
            "PaintHolding",
            "ThirdPartyStoragePartitioning",
            "AvoidCorsURLLoaderRestartOnRedirect",
            "OptimizationHints",
            "NetworkTimeServiceQuerying",
            "AimEnabled",
            "PreconnectToSearch",
            # keep host candidates as plain addresses (no mDNS names) on loopback
            "WebRtcHideLocalIpsWithMdns",
        ]
    ),
]


@asynccontextmanager
async def chromium(
    video: Path | None = None,
    *,
    extra_flags: tuple[str, ...] = (),
    without_flags: tuple[str, ...] = (),
) -> AsyncIterator[Browser]:
    """A fresh Chromium with its own profile; `video` is the fake camera's .y4m file.

    `without_flags` drops base flags: without the fake-UI flag headless Chromium refuses the
    camera and microphone, as a person who pressed "Block" would."""
    flags = [f for f in BASE_FLAGS if f not in without_flags] + list(extra_flags)
    if video is not None:
        flags.append(f"--use-file-for-fake-video-capture={video}")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=_niced_chromium(),
            headless=True,
            args=flags,
        )
        try:
            yield browser
        finally:
            await browser.close()


GRAB_JS = """
async (pid) => {
  const fig = document.querySelector(`figure[data-participant-id="${pid}"]`);
  if (!fig) return null;
  const v = fig.querySelector('video');
  if (!v || v.videoWidth === 0) return null;
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(v, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height);
  // RGBA → base64 to keep the transfer small and exact
  let s = '';
  const bytes = new Uint8Array(d.data.buffer);
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return {w: c.width, h: c.height, data: btoa(s)};
}
"""


async def grab_tile(
    page: Page, participant_id: str, *, selector_js: str = GRAB_JS
) -> np.ndarray | None:
    """The current picture of a participant's tile as decoded by the browser (RGB)."""
    out = await page.evaluate(selector_js, participant_id)
    if not out:
        return None
    rgba = np.frombuffer(base64.b64decode(out["data"]), np.uint8).reshape(out["h"], out["w"], 4)
    return rgba[:, :, :3].copy()


async def video_stats(page: Page, participant_id: str) -> dict[str, float] | None:
    """Frames the browser decoded for a participant's tile (getVideoPlaybackQuality)."""
    return await page.evaluate(
        """(pid) => {
          const fig = document.querySelector(`figure[data-participant-id="${pid}"]`);
          const v = fig && fig.querySelector('video');
          if (!v) return null;
          const q = v.getVideoPlaybackQuality();
          return {decoded: q.totalVideoFrames, w: v.videoWidth, h: v.videoHeight};
        }""",
        participant_id,
    )


async def until(
    fn: Callable[[], Awaitable[Any]], timeout_s: float = 30.0, step_s: float = 0.1
) -> Any:
    """Poll ``fn`` until it returns something truthy, and return that.

    A page that is navigating (the invite page hands over to the room page) has no execution
    context for a moment; an evaluate that lands in that gap is retried, not failed: the
    condition is about the page the user ends up on, not the one they are leaving.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            value = await fn()
        except PlaywrightError as exc:
            if not _is_navigation_gap(exc) or loop.time() > deadline:
                raise
            value = None
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step_s)


def _is_navigation_gap(exc: Exception) -> bool:
    text = str(exc)
    return "Execution context was destroyed" in text or "navigation" in text.lower()


async def host_room_url(ctx: BrowserContext, s: OpenSession) -> str:
    """The clinician signs in (the cookie stays in `ctx`) and takes a host grant for the
    session: the room's address with that grant, for a page of `ctx` to open."""
    resp = await ctx.request.post(f"{s.base_url}/api/v1/auth/login", data={
        "username": s.clinician.username, "password": s.password})
    assert resp.ok, await resp.text()
    csrf = (await resp.json())["csrf_token"]
    resp = await ctx.request.post(f"{s.base_url}/api/v1/sessions/{s.session_id}/host-grant",
                                  data={}, headers={"X-CSRF-Token": csrf})
    assert resp.ok, await resp.text()
    return f"{s.base_url}/room#grant={(await resp.json())['grant']}"
