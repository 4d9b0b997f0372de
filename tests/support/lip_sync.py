"""Audio with events a receiver can time: a tone burst every second from silence.

Lip sync is measured as (audio latency) − (video latency) at the same receiver, each from
capture to decoded output in the same process: the burst's onset against the time its first
frame was captured, the video against its numbered frames (tests/support/frame_check.py).
Positive: sound arrives after the picture.

At a browser, the same event is seen and heard: FlashTrack turns the picture bright for the
frames captured during each burst, on the ClapTrack's clock, and `browser_lip_sync` has a
member's own room page time each flash as presented and each burst as played, on the page's
clock (see PROBE_START_JS).
"""

from __future__ import annotations

import asyncio
import fractions
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from sfu.grants import Permissions
from web.bot import Bot

if TYPE_CHECKING:
    from playwright.async_api import Browser


RECEIVE_ONLY = Permissions(publish_audio=False, publish_video=False, subscribe=True)

RATE = 48000
FRAME_SAMPLES = 960  # 20 ms
BURST_EVERY_FRAMES = 50  # a burst each second
BURST_FRAMES = 10  # 200 ms of tone
# a decoded frame this loud after this many quiet ones is an onset (the burst's RMS is ~0.35)
ONSET_RMS = 0.1
QUIET_FRAMES = 5


class ClapTrack(MediaStreamTrack):
    """Silence, then a 1 kHz burst, once a second; remembers when each burst was captured."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._count = 0
        self.bursts: list[float] = []

    def clock(self) -> float:
        """When burst 0 began: fixed by the first of this track and a FlashTrack on it to
        run, so that the picture's flashes and the bursts keep one timeline."""
        if self._start is None:
            self._start = time.monotonic()
        return self._start

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is not None and self._count == 0:
            # a FlashTrack started the clock: join its timeline at the current frame rather
            # than send the frames since then all at once
            self._count = max(0, int((time.monotonic() - self._start) * RATE / FRAME_SAMPLES))
        start = self.clock()
        delay = start + self._count * FRAME_SAMPLES / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        phase = self._count % BURST_EVERY_FRAMES
        if phase < BURST_FRAMES:
            if phase == 0:
                self.bursts.append(time.monotonic())
            t = (np.arange(FRAME_SAMPLES) + self._count * FRAME_SAMPLES) / RATE
            pcm = (np.sin(2 * math.pi * 1000 * t) * 0.5 * 32767).astype(np.int16)
        else:
            pcm = np.zeros(FRAME_SAMPLES, np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._count * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, RATE)
        self._count += 1
        return frame

    def burst_before(self, t: float) -> float | None:
        for when in reversed(self.bursts):
            if when <= t:
                return when
        return None


class OnsetTimer:
    """Times each burst's arrival at one receiver (decoded audio frame RMS in, ms out).

    With `on_screen` (when the picture now on screen was captured, from its stamp), each
    onset also notes what the viewer sees as the burst sounds: the on-screen picture's
    capture time minus the burst's. Both are the source's own capture times, so the
    receiver's clock and scheduling cancel out. In sync, that picture is the one captured
    with the burst or just before it: between minus one frame interval and zero. Sound late
    by d moves it up by d; sound early by d, down by d.
    """

    def __init__(self, source: ClapTrack,
                 on_screen: Callable[[], float | None] | None = None) -> None:
        self.source = source
        self._on_screen = on_screen
        self._quiet = 0
        self.samples: list[tuple[float, float]] = []  # (arrival, latency ms)
        self.screen_leads_ms: list[float] = []

    def on_rms(self, rms: float) -> None:
        now = time.monotonic()
        if rms < ONSET_RMS:
            self._quiet += 1
            return
        if self._quiet >= QUIET_FRAMES:
            captured = self.source.burst_before(now)
            if captured is not None and now - captured < 0.9:
                self.samples.append((now, (now - captured) * 1000))
                seen = self._on_screen() if self._on_screen is not None else None
                if seen is not None:
                    self.screen_leads_ms.append((seen - captured) * 1000)
        self._quiet = 0


# --- the same event seen and heard: a picture that flashes with each burst, and a browser
# that times both where a member would see and hear them

# bright and dark pictures a decoder cannot confuse, whatever it does to a flat field
DARK, BRIGHT = 16, 235


class FlashTrack(MediaStreamTrack):
    """Dark video that turns bright for the frames captured during each of `clap`'s bursts.

    It runs on the ClapTrack's clock, so at an integer rate the first bright frame of each
    flash is captured at the same scheduled instant as its burst's first sample: the picture
    and the sound of one event. `picture_lead_frames` moves the flashes that many frames
    earlier (sound late by as much, on purpose), to show a receiver's measurement sees it.
    """

    kind = "video"

    def __init__(self, clap: ClapTrack, *, fps: int = 15, size: tuple[int, int] = (320, 240),
                 picture_lead_frames: int = 0) -> None:
        super().__init__()
        self.clap = clap
        self.fps = fps
        self.lead = picture_lead_frames
        self.width, self.height = size
        # frames bright per flash: those captured while the burst sounds
        self.bright_frames = max(1, round(fps * BURST_FRAMES / BURST_EVERY_FRAMES))
        self._count: int | None = None
        # when the first bright frame of each flash was captured
        self.flashes: list[float] = []

    def set_max_size(self, width: int, height: int) -> None:
        """The server's `publish_layer`: a flat picture is the same at any size."""
        self.width, self.height = min(self.width, width), min(self.height, height)

    def is_bright(self, index: int) -> bool:
        return (index + self.lead) % self.fps < self.bright_frames

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        start = self.clap.clock()
        if self._count is None:
            # join the shared timeline at the current frame
            self._count = max(0, math.ceil((time.monotonic() - start) * self.fps))
        index = self._count
        delay = start + index / self.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        bright = self.is_bright(index)
        if bright and not self.is_bright(index - 1):
            self.flashes.append(time.monotonic())
        img = np.full((self.height, self.width, 3), BRIGHT if bright else DARK, np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = int(index * 90000 / self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        self._count += 1
        return frame


def pair_events(flashes_ms: list[float], beeps_ms: list[float],
                within_ms: float = 400.0) -> list[tuple[float, float]]:
    """Each flash with the beep nearest to it (within `within_ms`), each beep used once:
    (flash, beep) pairs in flash order. Events come once a second, so the nearest is the
    same event's; a flash or beep the receiver missed pairs with nothing."""
    candidates = sorted(
        (abs(b - f), i, j)
        for i, f in enumerate(flashes_ms) for j, b in enumerate(beeps_ms)
        if abs(b - f) <= within_ms
    )
    used_f: set[int] = set()
    used_b: set[int] = set()
    pairs: list[tuple[float, float]] = []
    for _, i, j in candidates:
        if i in used_f or j in used_b:
            continue
        used_f.add(i)
        used_b.add(j)
        pairs.append((flashes_ms[i], beeps_ms[j]))
    return sorted(pairs)


def percentile(values: list[float], q: float) -> float | None:
    """The `q` quantile by nearest rank (no interpolation), or None with no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# In the page (a member's own room page): the remote tile's <video>, frame by frame as the
# compositor presents it (requestVideoFrameCallback: expectedDisplayTime is when that picture
# is on screen); a flash whose callback followed a presented frame it never saw is left out,
# as the first bright frame may have been the unseen one. The sound is timed twice, sample-
# exactly, on the same performance.now() clock:
#   delivered  as the track hands each 10 ms chunk to the <audio> element's renderer (a
#              MediaStreamTrackProcessor; the chunk's own timestamp): before the audio
#              device's output buffer, so the sound is heard a little later than this
#   heard      through WebAudio: an AudioWorklet (128-sample blocks) fed the track, each
#              sample placed at the moment it leaves that context's output
#              (getOutputTimestamp). This pays the device's output buffer and WebAudio's
#              own FIFO and render buffer on top, so the element plays the sound no later
# What a member hears from the element lies between the two; `tap_ms` is their difference.
# The worklet comes from a blob: URL, so the page must be opened in a context that bypasses
# its CSP (its own scripts run unchanged).
PROBE_START_JS = """
async ({pid, threshold, quietMs}) => {
  const tile = window.confide && window.confide.tiles.get(pid);
  if (!tile || !tile.tracks.audio || !tile.tracks.video) return {error: 'no tile with both tracks'};
  const probe = {flashes: [], beeps: [], frames: 0, missedFrames: 0, lumaMin: 255, lumaMax: 0,
                 peak: 0, errors: [], started: performance.now(), linkWeak: [],
                 delivered: []};
  window.__lipSync = probe;
  // the server pausing others' video for this member (audio first) would freeze the flashes
  new MutationObserver(() => probe.linkWeak.push([performance.now(),
    document.body.classList.contains('link-weak')])).observe(document.body, {attributes: true});

  const v = tile.video;
  const canvas = document.createElement('canvas');
  canvas.width = 16; canvas.height = 12;
  const g = canvas.getContext('2d', {willReadFrequently: true});
  let bright = null, presented = null;
  const onFrame = (now, md) => {
    try {
      g.drawImage(v, 0, 0, 16, 12);
      const d = g.getImageData(0, 0, 16, 12).data;
      let sum = 0;
      for (let i = 0; i < d.length; i += 4) sum += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      const luma = sum / (d.length / 4);
      probe.lumaMin = Math.min(probe.lumaMin, luma); probe.lumaMax = Math.max(probe.lumaMax, luma);
      const gap = presented === null ? 1 : md.presentedFrames - presented;
      presented = md.presentedFrames;
      probe.frames += 1;
      if (gap > 1) probe.missedFrames += gap - 1;
      // hysteresis: a coded flat field may wander a little, never across the middle band
      const isBright = luma > 150 ? true : (luma < 100 ? false : bright);
      if (isBright === true && bright === false) {
        probe.flashes.push({t: md.expectedDisplayTime, presentation: md.presentationTime,
                            gap, luma});
      }
      bright = isBright;
    } catch (e) { probe.errors.push(String(e)); }
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);

  const worklet = `
    class Onset extends AudioWorkletProcessor {
      constructor(options) {
        super();
        this.threshold = options.processorOptions.threshold;
        this.quietNeeded = options.processorOptions.quietFrames;
        this.quiet = 0; this.blocks = 0; this.peak = 0;
      }
      process(inputs) {
        const ch = inputs[0] && inputs[0][0];
        this.blocks += 1;
        if (ch) {
          let first = -1;
          for (let i = 0; i < ch.length; i++) {
            const a = Math.abs(ch[i]);
            if (a > this.peak) this.peak = a;
            if (first < 0 && a >= this.threshold) first = i;
          }
          if (first < 0) this.quiet += ch.length;
          else {
            if (this.quiet + first >= this.quietNeeded) {
              this.port.postMessage({onset: currentFrame + first, peak: this.peak});
            }
            this.quiet = 0;
          }
        } else this.quiet += 128;
        if (this.blocks % 375 === 0) this.port.postMessage({peak: this.peak});
        return true;
      }
    }
    registerProcessor('onset', Onset);`;
  const ac = new AudioContext({latencyHint: 'interactive'});
  window.__lipSyncAudio = ac;
  await ac.audioWorklet.addModule(URL.createObjectURL(new Blob([worklet], {type: 'text/javascript'})));
  if (ac.state !== 'running') await ac.resume();
  // a context time of `ctx` as the performance.now() at which that sample leaves its output
  const heardAt = (ctx, at) => {
    const ts = ctx.getOutputTimestamp();
    return ts.performanceTime + (at - ts.contextTime) * 1000;
  };
  const silent = ac.createGain();
  silent.gain.value = 0;  // pulled by the graph, heard only through the page's own element
  silent.connect(ac.destination);
  const listen = (stream, onOnset) => {
    const node = new AudioWorkletNode(ac, 'onset', {processorOptions: {
      threshold, quietFrames: Math.round(quietMs / 1000 * ac.sampleRate)}});
    ac.createMediaStreamSource(stream).connect(node).connect(silent);
    node.port.onmessage = (e) => {
      if (e.data.onset === undefined) { onOnset(null, e.data.peak); return; }
      onOnset(heardAt(ac, e.data.onset / ac.sampleRate), e.data.peak);
    };
  };
  listen(new MediaStream([tile.tracks.audio]), (t, peak) => {
    probe.peak = peak;
    if (t !== null) probe.beeps.push({t, posted: performance.now()});
  });

  // the same sound as the track delivers it to the page's <audio> element's renderer, with
  // no WebAudio in between: each chunk's time is when the renderer pulled it for the output
  // (a clock of its own, put on performance.now() by the least delay seen between a chunk's
  // time and its reading)
  if (window.MediaStreamTrackProcessor) {
    const reader = new MediaStreamTrackProcessor({track: tile.tracks.audio}).readable.getReader();
    const quietNeeded = quietMs / 1000;
    let quietFor = 0;
    probe.clockOffset = Infinity; probe.chunks = 0;
    (async () => {
      for (;;) {
        const {value, done} = await reader.read();
        if (done) return;
        const now = performance.now();
        const ts = value.timestamp / 1000;
        probe.clockOffset = Math.min(probe.clockOffset, now - ts);
        probe.chunks += 1;
        const n = value.numberOfFrames;
        const pcm = new Float32Array(n);
        value.copyTo(pcm, {planeIndex: 0, format: 'f32-planar'});
        let first = -1;
        for (let i = 0; i < n; i++) if (Math.abs(pcm[i]) >= threshold) { first = i; break; }
        if (first < 0) quietFor += n / value.sampleRate;
        else {
          if (quietFor + first / value.sampleRate >= quietNeeded) {
            probe.delivered.push(ts + first / value.sampleRate * 1000);
          }
          quietFor = 0;
        }
        value.close();
      }
    })().catch((e) => probe.errors.push('track processor: ' + e));
  } else probe.errors.push('no MediaStreamTrackProcessor');
  return {state: ac.state, sampleRate: ac.sampleRate, baseLatency: ac.baseLatency,
          outputLatency: ac.outputLatency};
}
"""

# what the page's receiver says of the two streams: jitter buffer delays, and the msid each
# arrived with (Chromium delays one stream to match the other only within one msid stream)
PROBE_STATS_JS = """
async (pid) => {
  const s = window.confide;
  const tile = s.tiles.get(pid);
  const pc = s.subscriber && s.subscriber.pc;
  if (!tile || !pc) return null;
  const out = {msid: {}, inbound: {}};
  const ids = {audio: tile.tracks.audio && tile.tracks.audio.id,
               video: tile.tracks.video && tile.tracks.video.id};
  for (const r of (await pc.getStats()).values()) {
    if (r.type !== 'inbound-rtp') continue;
    for (const kind of ['audio', 'video']) {
      if (r.kind === kind && r.trackIdentifier === ids[kind]) {
        out.inbound[kind] = {jitterBufferDelay: r.jitterBufferDelay,
                             jitterBufferTargetDelay: r.jitterBufferTargetDelay,
                             jitterBufferEmittedCount: r.jitterBufferEmittedCount,
                             packetsLost: r.packetsLost, framesDropped: r.framesDropped,
                             estimatedPlayoutTimestamp: r.estimatedPlayoutTimestamp ?? null};
      }
    }
  }
  const sdp = pc.remoteDescription ? pc.remoteDescription.sdp : '';
  for (const section of sdp.split(/\\r\\n(?=m=)/)) {
    const mid = (section.match(/a=mid:(\\S+)/) || [])[1];
    const owner = mid && s.midOwner[mid];
    if (owner && owner.participantId === pid) {
      out.msid[owner.kind] = (section.match(/a=msid:([^\\r\\n]+)/) || [])[1] || null;
    }
  }
  out.elements = {audio: tile.audio.srcObject ? tile.audio.srcObject.id : null,
                  video: tile.video.srcObject ? tile.video.srcObject.id : null};
  return out;
}
"""

PROBE_READY_JS = """
(pid) => {
  const tile = window.confide && window.confide.tiles.get(pid);
  return Boolean(tile && tile.tracks.audio && tile.tracks.video && tile.video.videoWidth > 0
                 && tile.video.getVideoPlaybackQuality().totalVideoFrames > 15);
}
"""

# a decoded sample this loud after this long quiet starts a burst (the tone peaks at 0.5)
BROWSER_ONSET_LEVEL = 0.1
BROWSER_QUIET_MS = 200.0


@dataclass
class BrowserLipSync:
    """Lip sync of one publisher's flashes and bursts, as one browser page presented them."""

    profile: str
    window_s: float
    settle_s: float
    # burst − flash per paired event after `settle_s` (ms, on the page's clock; + = sound
    # after picture), the sound as heard through WebAudio (the later bound, see above) ...
    offsets_ms: list[float] = field(default_factory=list)
    # ... and as delivered to the element's renderer (the earlier bound)
    delivered_offsets_ms: list[float] = field(default_factory=list)
    # heard, before `settle_s` (the receiver still bringing the two streams together)
    early_offsets_ms: list[float] = field(default_factory=list)
    flashes: int = 0
    beeps: int = 0
    delivered_beeps: int = 0
    # flashes left out: a presented frame before them went unseen by the probe
    flashes_unsure: int = 0
    # the same at the source: burst capture − first bright frame's capture, median ms
    source_skew_ms: float | None = None
    # heard − delivered per burst, median ms: WebAudio's and the output's buffers
    tap_ms: float | None = None
    frames: int = 0
    missed_frames: int = 0
    luma: tuple[float, float] = (0.0, 0.0)
    audio_peak: float = 0.0
    # times the server paused others' video for the page (audio first) during the window
    video_paused: int = 0
    audio: dict[str, Any] = field(default_factory=dict)
    receiver: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # the page's own records (performance.now() ms), for a closer look
    events: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def paired(self) -> int:
        return min(len(self.offsets_ms), len(self.delivered_offsets_ms))

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.offsets_ms) if self.offsets_ms else None

    @property
    def p95_ms(self) -> float | None:
        return percentile(self.offsets_ms, 0.95)

    @property
    def delivered_median_ms(self) -> float | None:
        return statistics.median(self.delivered_offsets_ms) if self.delivered_offsets_ms \
            else None

    @property
    def delivered_p95_ms(self) -> float | None:
        return percentile(self.delivered_offsets_ms, 0.95)

    @property
    def early_median_ms(self) -> float | None:
        return statistics.median(self.early_offsets_ms) if self.early_offsets_ms else None

    def summary(self) -> str:
        def ms(x: float | None) -> str:
            return "-" if x is None else f"{x:+.0f}"
        return (f"{self.profile}: lip sync median {ms(self.delivered_median_ms)} .. "
                f"{ms(self.median_ms)} ms (delivered .. heard), p95 "
                f"{ms(self.delivered_p95_ms)} .. {ms(self.p95_ms)} ms over {self.paired} "
                f"paired events after {self.settle_s:g} s; before that heard median "
                f"{ms(self.early_median_ms)} ms over {len(self.early_offsets_ms)} "
                f"({self.flashes} flashes, {self.flashes_unsure} unsure, {self.beeps} heard, "
                f"{self.delivered_beeps} delivered; tap {ms(self.tap_ms)} ms; source skew "
                f"{ms(self.source_skew_ms)} ms"
                + (f"; video paused {self.video_paused}x for a weak link" if self.video_paused
                   else "") + ")")


def _source_skew(clap: ClapTrack, flash: FlashTrack) -> float | None:
    pairs = pair_events([t * 1000 for t in flash.flashes], [t * 1000 for t in clap.bursts])
    return statistics.median(b - f for f, b in pairs) if pairs else None


async def browser_lip_sync(browser: Browser, link: Callable[..., str], *, room: str,
                           profile: str = "none", window_s: float = 20.0,
                           settle_s: float = 8.0, picture_lead_frames: int = 0,
                           ready_timeout_s: float = 45.0) -> BrowserLipSync:
    """A `web.bot.Bot` publishes FlashTrack + ClapTrack with `profile` into `room`; a
    receive-only member's page in `browser` shows it; the page times each flash and burst
    for `window_s` from its first picture, and they are paired. Offsets from the first
    `settle_s` are kept apart: Chromium's receiver is still bringing the two streams
    together then (by 100 ms and more at first).

    `link(room, name, **grant)` mints a join link on the server under test."""
    from tests.support.browser import until  # Playwright only where a browser is driven

    clap = ClapTrack()
    flash = FlashTrack(clap, picture_lead_frames=picture_lead_frames)
    bot = Bot(link(room, "Speaker", profile=profile), video=flash, audio=clap)
    out = BrowserLipSync(profile, window_s, settle_s)
    context = await browser.new_context(bypass_csp=True)
    try:
        page = await context.new_page()
        page.on("pageerror", lambda e: out.errors.append(str(e)))
        await page.goto(link(room, "Viewer", permissions=RECEIVE_ONLY))
        await until(lambda: page.evaluate("window.confide && window.confide.me"), 30.0)
        await bot.connect()
        pid = str(bot.me["id"])
        try:
            await until(lambda: page.evaluate(PROBE_READY_JS, pid), ready_timeout_s)
        except AssertionError:
            raise AssertionError(f"the page never played the speaker's video and sound: "
                                 f"{bot.report()}") from None
        out.audio = await page.evaluate(PROBE_START_JS, {
            "pid": pid, "threshold": BROWSER_ONSET_LEVEL, "quietMs": BROWSER_QUIET_MS})
        if "error" in out.audio:
            raise AssertionError(f"probe: {out.audio['error']}")
        before = await page.evaluate(PROBE_STATS_JS, pid)
        await asyncio.sleep(window_s)
        probe = await page.evaluate("window.__lipSync")
        after = await page.evaluate(PROBE_STATS_JS, pid)
    finally:
        await bot.leave()
        await context.close()
    out.receiver = _receiver(before, after)
    settled = probe["started"] + settle_s * 1000
    flashes = probe["flashes"]
    sure = [f["t"] for f in flashes if f["gap"] == 1]
    heard = [b["t"] for b in probe["beeps"]]
    # chunk times on their own clock, moved onto performance.now() (Chromium's are already
    # there: the least delay from a chunk's time to its reading is ~0)
    offset = probe.get("clockOffset")
    offset = offset if isinstance(offset, (int, float)) and math.isfinite(offset) else 0.0
    delivered = [t + offset for t in probe.get("delivered") or []]
    out.flashes, out.flashes_unsure = len(flashes), len(flashes) - len(sure)
    out.beeps, out.delivered_beeps = len(heard), len(delivered)
    for f, b in pair_events(sure, heard):
        (out.offsets_ms if f >= settled else out.early_offsets_ms).append(round(b - f, 1))
    out.delivered_offsets_ms = [round(b - f, 1) for f, b in pair_events(sure, delivered)
                                if f >= settled]
    tap = pair_events(delivered, heard, within_ms=300.0)
    out.tap_ms = round(statistics.median(h - d for d, h in tap), 1) if tap else None
    out.source_skew_ms = _source_skew(clap, flash)
    out.frames, out.missed_frames = probe["frames"], probe["missedFrames"]
    out.luma = (round(probe["lumaMin"], 1), round(probe["lumaMax"], 1))
    out.audio_peak = round(probe["peak"], 3)
    out.errors += probe["errors"]
    out.video_paused = sum(1 for _, weak in probe["linkWeak"] if weak)
    out.events = {k: probe.get(k) for k in ("started", "flashes", "beeps", "delivered",
                                             "clockOffset", "chunks")}
    return out


def _receiver(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Mean jitter buffer delay per stream over the window, and the streams' msids."""
    if not after:
        return {}
    out: dict[str, Any] = {"msid": after.get("msid"), "elements": after.get("elements")}
    # one sync group: Chromium's receiver aligns the two only when their msid streams match
    msid = after.get("msid") or {}
    streams = {kind: (m or "").split(" ")[0] for kind, m in msid.items()}
    out["same_msid_stream"] = len(streams) == 2 and streams["audio"] == streams["video"]
    for kind in ("audio", "video"):
        a = (after.get("inbound") or {}).get(kind) or {}
        b = ((before or {}).get("inbound") or {}).get(kind) or {}
        n = (a.get("jitterBufferEmittedCount") or 0) - (b.get("jitterBufferEmittedCount") or 0)
        d = (a.get("jitterBufferDelay") or 0) - (b.get("jitterBufferDelay") or 0)
        out[f"{kind}_jitter_buffer_ms"] = round(d / n * 1000, 1) if n > 0 else None
        out[f"{kind}_packets_lost"] = a.get("packetsLost")
    # where the receiver itself puts the two streams' playout on the sender's clock (from
    # its RTCP sender reports): audio minus video, + = it plays the sound later
    inbound = after.get("inbound") or {}
    audio, video = ((inbound.get(k) or {}).get("estimatedPlayoutTimestamp")
                    for k in ("audio", "video"))
    out["estimated_playout_audio_minus_video_ms"] = (
        round(audio - video, 1) if audio is not None and video is not None else None)
    return out
