"""Privacy profiles applied by the server inside a live room, seen by real aiortc peers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from confidentiality.pipeline import DEADLINE_MS
from tests.support.axe import ARTIFACTS
from tests.support.faces import (
    astronaut_frames,
    face_box_in_source,
    faces_overlapping,
    haar_faces,
    write_y4m,
)
from web.bot import Bot, ColorTrack, FileVideoTrack, ToneTrack


async def _wait_for(predicate, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    return {
        "one": write_y4m(root / "one.y4m", astronaut_frames("static", 30)),
        "two": write_y4m(root / "two.y4m", astronaut_frames("two_faces", 45)),
    }


FACE = face_box_in_source("static", 0, 30)


def _face_in_centre(img: np.ndarray) -> bool:
    # Haar has false positives elsewhere (the suit): look only where the face really is
    return bool(faces_overlapping(haar_faces(img), FACE))


async def test_face_mask_hides_the_face_from_every_subscriber(server, clips) -> None:  # type: ignore[no-untyped-def]
    received: list[np.ndarray] = []
    raw: list[np.ndarray] = []
    masked = Bot(
        server.link("g", "Robin", profile="face_mask"),
        video=FileVideoTrack(str(clips["one"])),
        audio=ToneTrack(),
    )
    plain = Bot(server.link("g", "Ash"), video=FileVideoTrack(str(clips["one"])), audio=ToneTrack())
    viewer = Bot(
        server.link("g", "Wren"),
        video=ColorTrack("red"),
        audio=ToneTrack(),
        on_video_frame=lambda pid, img: (received if pid == masked.me["id"] else raw).append(img),
    )
    try:
        for bot in (masked, plain, viewer):
            await bot.connect()
        await _wait_for(lambda: len(received) >= 30 and len(raw) >= 30, 90)
        # the same clip, unmasked, shows a face to an independent detector...
        # (an early, low-bitrate VP8 picture can defeat Haar; over a second or two it finds it)
        assert sum(_face_in_centre(img) for img in raw[-20:]) >= 4
        # ...and masked by the server, never (placeholders while models load included)
        leaks = [i for i, img in enumerate(received) if _face_in_centre(img)]
        if leaks:
            # kept for a person to look at: a leak, or what fooled the detector
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for i in leaks[:8]:
                cv2.imwrite(str(ARTIFACTS / f"face-mask-leak-{i:03d}.png"),
                            cv2.cvtColor(received[i], cv2.COLOR_RGB2BGR))
        assert not leaks, (f"face found in received frames {leaks} of {len(received)} "
                           f"(saved in {ARTIFACTS.name})")
        # it is still a picture of the scene, not a blank: the person's outline survives
        assert float(np.std(received[-1])) > 10
        # the participant sees the same processed stream as their self-view
        await _wait_for(lambda: masked.self_view.video_frames > 10, 20)
    finally:
        for bot in (masked, plain, viewer):
            await bot.leave()


async def test_bystander_alerts_the_host_privately_and_prompts_the_participant(
    server, clips
) -> None:  # type: ignore[no-untyped-def]
    host = Bot(
        server.link("g2", "Clinician", role="host"), video=ColorTrack("red"), audio=ToneTrack()
    )
    member = Bot(
        server.link("g2", "Robin", profile="blur"),
        video=FileVideoTrack(str(clips["two"])),
        audio=ToneTrack(),
    )
    other = Bot(
        server.link("g2", "Ash", profile="blur"),
        video=FileVideoTrack(str(clips["one"])),
        audio=ToneTrack(),
    )
    try:
        for bot in (host, member, other):
            await bot.connect()

        def alerts(bot: Bot, kind: str) -> list[dict[str, object]]:
            return [
                m
                for m in bot.messages
                if m.get("type") in ("alert", "prompt") and m.get("kind") == kind
            ]

        await _wait_for(lambda: alerts(host, "bystander"), 60)
        (alert,) = alerts(host, "bystander")[:1]
        assert alert["participant_id"] == member.me["id"]
        assert "Robin" in str(alert["message"])
        await _wait_for(lambda: alerts(member, "bystander"), 10)
        # never shown to the group, and never raised for the one-face video
        await asyncio.sleep(3)
        assert not alerts(other, "bystander")
        assert all(a["participant_id"] != other.me["id"] for a in alerts(host, "bystander"))
    finally:
        for bot in (host, member, other):
            await bot.leave()


class _RaisingTransform:
    """A privacy transform that fails on every frame (a broken model, say)."""

    def apply(self, rgb: np.ndarray, profile: object, t_s: float) -> object:
        raise RuntimeError("segmentation failed")

    def close(self) -> None:
        pass


def raising_pipeline(profile: object, name: str, on_event: object) -> object:
    """The server's privacy pipeline around a transform that always raises; imported by the
    media worker process by name, as the server's own factory is."""
    from confidentiality.pipeline import PrivacyPipeline

    return PrivacyPipeline(
        profile=profile,
        display_name=name,
        on_event=on_event,  # type: ignore[arg-type]
        transform_factory=_RaisingTransform,  # type: ignore[arg-type,return-value]
    )


async def test_failing_transform_sends_placeholder_alerts_host_and_records_incident(
    server, clips
) -> None:  # type: ignore[no-untyped-def]
    from sfu.workers import MediaWorkers
    from web import keys

    registry = server.app[keys.ROOMS]
    # the failing transform runs where the server's runs: in a media worker process
    stock, registry.media_workers = (
        registry.media_workers,
        MediaWorkers(1, factory=f"{__name__}:raising_pipeline"),
    )
    received: list[np.ndarray] = []
    host = Bot(
        server.link("g3", "Clinician", role="host"),
        video=ColorTrack("red"),
        audio=ToneTrack(),
        on_video_frame=lambda pid, img: pid != host.me.get("id") and received.append(img),
    )
    member = Bot(
        server.link("g3", "Robin", profile="blur"),
        video=FileVideoTrack(str(clips["one"])),
        audio=ToneTrack(),
    )
    incidents: list[tuple[str, str | None]] = []
    try:
        await host.connect()
        room = registry.rooms["g3"]

        class Recorder:
            async def incident(self, kind: str, pid: str | None, detail: str) -> None:
                incidents.append((kind, pid))

            def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
                async def ignore(*a: object, **k: object) -> None:
                    return None

                return ignore

        room.controller.recorder = Recorder()
        await member.connect()
        await _wait_for(lambda: len(received) >= 15, 60)
        # every frame the host received of Robin is the placeholder: no face, ever
        assert not any(_face_in_centre(img) for img in received)
        await _wait_for(
            lambda: any(
                m.get("type") == "alert" and m.get("kind") == "privacy_fallback"
                for m in host.messages
            ),
            20,
        )
        await _wait_for(lambda: ("fail_closed_placeholder", member.me["id"]) in incidents, 10)
        # a transform that raises is a real failure: the host hears at once, and once
        (alert,) = [m for m in host.messages
                    if m.get("type") == "alert" and m.get("kind") == "privacy_fallback"]
        assert alert["participant_id"] == member.me["id"] and alert["count"] == 1
        # the member is not told anything alarming, and the room carries on
        assert not any(m.get("type") == "alert" for m in member.messages)
    finally:
        await host.leave()
        await member.leave()
        await registry.media_workers.aclose()
        registry.media_workers = stock


class _WarmingTransform:
    """A transform that misses its deadline on three of its first frames, as models warming
    up do, then keeps every one."""

    def __init__(self) -> None:
        self.calls = 0

    def apply(self, rgb: np.ndarray, profile: object, t_s: float) -> object:
        from confidentiality.transforms import TransformResult

        self.calls += 1
        if self.calls in (1, 4, 7):
            time.sleep(DEADLINE_MS / 1000 + 0.1)  # past the deadline
        return TransformResult(255 - rgb)

    def close(self) -> None:
        pass


def warming_pipeline(profile: object, name: str, on_event: object) -> object:
    """The server's privacy pipeline around `_WarmingTransform`, loaded by the worker."""
    from confidentiality.pipeline import PrivacyPipeline

    return PrivacyPipeline(
        profile=profile, display_name=name, on_event=on_event,  # type: ignore[arg-type]
        transform_factory=_WarmingTransform,  # type: ignore[arg-type,return-value]
    )


async def test_a_filter_warming_up_pauses_video_without_alerting_the_host(server) -> None:  # type: ignore[no-untyped-def]
    # fail-closed is unchanged (a frame past its deadline is a placeholder), but a few short
    # pauses while the filter warms up are not a failure the host needs to hear about
    from sfu.workers import MediaWorkers
    from web import keys

    registry = server.app[keys.ROOMS]
    stock, registry.media_workers = registry.media_workers, MediaWorkers(
        1, factory=f"{__name__}:warming_pipeline")
    events: list[dict[str, object]] = []
    host = Bot(server.link("g4", "Clinician", role="host"), video=ColorTrack("red"),
               audio=ToneTrack())
    member = Bot(server.link("g4", "Robin", profile="blur"), video=ColorTrack("green"),
                 audio=ToneTrack())
    try:
        await host.connect()

        def note(event: str, data: dict[str, object]) -> None:
            if event == "privacy_event":
                events.append(data)

        registry.rooms["g4"].on(note)
        await member.connect()
        member_id = member.me["id"]

        def pauses() -> int:
            return sum(1 for e in events if e.get("kind") == "fail_closed")

        # the transform's output (colours inverted: green shows as magenta) reaches the host
        await _wait_for(lambda: host.peers.get(member_id) is not None
                        and host.peers[member_id].colors.get("magenta", 0) >= 15, 60)
        await _wait_for(lambda: pauses() >= 2, 20)
        await asyncio.sleep(3)  # longer than an alert for a lasting pause would take
        assert not [m for m in host.messages if m.get("type") == "alert"
                    and m.get("kind") == "privacy_fallback"], pauses()
    finally:
        await host.leave()
        await member.leave()
        await registry.media_workers.aclose()
        registry.media_workers = stock
