"""The packaged-photograph corpus through a live room: real aiortc peers, the server's own
media workers, VP8 both ways, and checks that are not MediaPipe on what a member receives."""

from __future__ import annotations

import asyncio
import fractions
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest

from tests.support.corpus import FPS, clip
from tests.support.corpus_check import (
    ClipReport,
    FrameMatcher,
    as_sent,
    check_frame,
    detect_many,
    is_placeholder,
)
from tests.support.faces import write_y4m
from web.bot import VIDEO_CLOCK, Bot, ColorTrack, FileVideoTrack, ToneTrack

# the hardest stretches of the corpus, each looped by its publisher: the zoom that cut a face
# by the frame's bottom edge under someone else's (it once reached browsers), and faces
# straddling the left and right edges (eleven faces 1/20 of the frame wide: the unit corpus
# and the bench). Two publishers, so that on two cores the server's pipelines keep up and
# what arrives is mostly processed frames, not placeholders. All move with the camera, so
# which frame a received picture shows can be told from its content
LIVE = {"group_zoom": (50, 100), "edge_faces": (0, 50)}
RECEIVE = 16  # matched frames per publisher: enough that a face shown in 1 of 8 frames is caught
RECEIVE_S = 150.0  # at most this long to gather them (a loaded machine sends placeholders)
DETECT_EVERY = 4  # the independent detectors on every 4th matched frame (detail on all)
# a received picture whose best match correlates less than this is not a frame of the clip
# (the placeholder card shown while the pipeline catches up: ~0.02; real frames through VP8
# measured 0.19 and up)
MATCHED = 0.1


async def _wait_for(predicate, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def _stretch(name: str) -> tuple[list[np.ndarray], list[list[tuple[int, int, int, int]]]]:
    c = clip(name)
    a, b = LIVE.get(name, (0, len(c.frames)))
    return c.frames[a:b], c.faces[a:b]


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    names = [*LIVE, "walk_in"]
    return {n: write_y4m(root / f"{n}.y4m", _stretch(n)[0], FPS) for n in names}


@pytest.mark.slow
async def test_face_mask_corpus_through_a_live_room(server, clip_files) -> None:  # type: ignore[no-untyped-def]
    names = list(LIVE)
    received = dict.fromkeys(names, 0)  # frames received per publisher
    publishers = {
        n: Bot(
            server.link("c", f"M{i}", profile="face_mask"),
            video=FileVideoTrack(str(clip_files[n])),
            audio=ToneTrack(),
        )
        for i, n in enumerate(names)
    }
    by_id: dict[str, str] = {}

    matchers = {n: FrameMatcher(_stretch(n)[0]) for n in names}
    matched: dict[str, list[tuple[np.ndarray, int]]] = {n: [] for n in names}

    def on_frame(pid: str, img: np.ndarray) -> None:
        # every other frame: consecutive frames are alike, and matching costs the event loop
        name = by_id.get(pid)
        if name is None or len(matched[name]) >= RECEIVE:
            return
        received[name] += 1
        if received[name] % 2:
            return
        k, score = matchers[name].match(img)
        if score >= MATCHED:
            matched[name].append((img, k))

    viewer = Bot(
        server.link("c", "Viewer"),
        video=ColorTrack("red"),
        audio=ToneTrack(),
        on_video_frame=on_frame,
    )
    bots = [viewer, *publishers.values()]
    try:
        await viewer.connect()
        for n, bot in publishers.items():
            await bot.connect()
            by_id[bot.me["id"]] = n
        deadline = time.monotonic() + RECEIVE_S
        while time.monotonic() < deadline and any(len(matched[n]) < RECEIVE for n in names):
            await asyncio.sleep(0.2)
    finally:
        for bot in bots:
            await bot.leave()
    for n in names:
        # the rest were the placeholder card (models loading, a deadline missed under load)
        assert len(matched[n]) >= RECEIVE, (
            f"{n}: {len(matched[n])} of {received[n]} received frames showed the clip"
        )
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for n in names:
            frames, faces = _stretch(n)
            matched_n = matched[n]
            assert all(img.shape == (480, 640, 3) for img, _ in matched_n), n
            report = ClipReport(n, frames=len(matched_n))
            checks = [check_frame(img, as_sent(frames[k]), faces[k]) for img, k in matched_n]
            sample = list(range(0, len(matched_n), DETECT_EVERY))
            found = detect_many([(matched_n[j][0], faces[matched_n[j][1]]) for j in sample], pool)
            for j, f in zip(sample, found, strict=True):
                checks[j].found = f
            for (_, k), check in zip(matched_n, checks, strict=True):
                report.add_output(k, check)
            print(
                f"\n{n}: {received[n]} received, {len(matched_n)} matched to a frame, "
                f"{report.checked_out} looked at by the detectors; most of one face's "
                f"detail shown {report.detail_max:.0%}; leaks {len(report.leaks)}"
            )
            assert not report.leaks, f"{n}: a face reached the viewer: {report.leaks[:5]}"


class _StartOnCue(FileVideoTrack):
    """A clip that shows its first frame until cued, then plays from the start, noting when
    each frame was handed to the sender."""

    def __init__(self, path: str, fps: int = FPS) -> None:
        super().__init__(path, fps)
        self.play = asyncio.Event()
        self.sent_at: dict[int, float] = {}
        self._first: np.ndarray | None = None
        self._restarted = False

    async def recv(self) -> av.VideoFrame:
        if self._first is None:
            frame = await super().recv()
            self._first = frame.to_ndarray(format="yuv420p")
            return frame
        if not self.play.is_set():
            assert self._start is not None
            delay = self._start + self._count / self.fps - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = av.VideoFrame.from_ndarray(self._first, format="yuv420p")
            frame.pts = int(self._count * VIDEO_CLOCK / self.fps)
            frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
            self._count += 1
            return frame
        if not self._restarted:
            self._restarted = True
            with self._lock:  # from the clip's first frame again
                if self._container is not None:
                    self._container.close()
                self._container = self._frames = None
            self._index = 0
        frame = await super().recv()
        self.sent_at.setdefault(self._index, time.monotonic())
        self._index += 1
        return frame


@pytest.mark.parametrize("profile", ["face_mask", "blur"])
async def test_bystander_walking_in_reaches_the_host_within_two_seconds(  # type: ignore[no-untyped-def]
    server, clip_files, profile: str
) -> None:
    c = clip("walk_in")
    appears = c.first_frame_with(2)
    assert appears is not None
    processed: list[int] = []

    def on_frame(pid: str, img: np.ndarray) -> None:
        # the member's picture as the pipeline made it, not the placeholder shown while the
        # models load
        if not is_placeholder(img):
            processed.append(1)

    # the host watches (and only watches: the fewer streams this one process encodes and
    # decodes for its peers, the less the measurement is of the test's own load)
    host = Bot(server.link("b", "Clinician", role="host"), publish=False, on_video_frame=on_frame)
    track = _StartOnCue(str(clip_files["walk_in"]))
    member = Bot(server.link("b", "Robin", profile=profile), video=track)
    try:
        await host.connect()
        await member.connect()
        # the member's processed video is flowing before anyone walks in
        await _wait_for(lambda: len(processed) > 30, 60)
        track.play.set()
        alerted_at = await _when(
            lambda: any(
                m.get("type") == "alert" and m.get("kind") == "bystander" for m in host.messages
            ),
            30,
        )
        assert appears in track.sent_at
        took_s = alerted_at - track.sent_at[appears]
        print(
            f"\n{profile}: second face wholly in view at frame {appears}; host alerted "
            f"{took_s:.2f} s after that frame was sent"
        )
        assert took_s <= 2.0
    finally:
        for bot in (host, member):
            await bot.leave()


async def _when(predicate, timeout_s: float) -> float:  # type: ignore[no-untyped-def]
    """The monotonic time at which `predicate` first held (polled every 10 ms)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
    return time.monotonic()
