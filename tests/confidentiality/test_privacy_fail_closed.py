"""Fail closed: whatever goes wrong, subscribers get the placeholder, never the camera."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from conftest import EventLog, make_pipeline

from confidentiality.errors import ModelLoadError
from confidentiality.pipeline import DEADLINE_MS
from confidentiality.placeholder import PAUSED_REASON, placeholder_frame
from confidentiality.profiles import Profile
from confidentiality.transforms import MediaPipeTransform, TransformResult
from tests.support.faces import astronaut_frames, to_video_frame, video_frame_rgb

SOURCE = astronaut_frames("static", 1)[0]


def _is_placeholder(out: np.ndarray) -> bool:
    card = video_frame_rgb(placeholder_frame(out.shape[1], out.shape[0], "Robin", PAUSED_REASON))
    return bool(np.array_equal(out, card))


class RaisingTransform:
    def apply(self, rgb: np.ndarray, profile: Profile, t_s: float) -> TransformResult:
        raise RuntimeError("segmentation exploded")

    def close(self) -> None:
        pass


class SleepyTransform:
    """Sleeps past the deadline on the first `slow_calls` calls, then blacks the frame out."""

    def __init__(self, sleep_s: float, slow_calls: int = 1) -> None:
        self.sleep_s = sleep_s
        self.slow_calls = slow_calls
        self.calls = 0
        self.finished = threading.Event()

    def apply(self, rgb: np.ndarray, profile: Profile, t_s: float) -> TransformResult:
        self.calls += 1
        if self.calls <= self.slow_calls:
            time.sleep(self.sleep_s)
            self.finished.set()
        return TransformResult(np.zeros_like(rgb))

    def close(self) -> None:
        pass


class IdentityTransform:
    """A buggy transform that hands the camera frame straight back."""

    def apply(self, rgb: np.ndarray, profile: Profile, t_s: float) -> TransformResult:
        return TransformResult(rgb)

    def close(self) -> None:
        pass


def test_raising_transform_gives_placeholder_and_event(events: EventLog) -> None:
    pipeline = make_pipeline(Profile.BLUR, events, transform_factory=RaisingTransform)
    for i in range(3):
        out = video_frame_rgb(pipeline.process(to_video_frame(SOURCE, i)))
        assert _is_placeholder(out)
    pipeline.close()
    # one alert per failure episode, naming only the pseudonym
    assert events.kinds() == ["fail_closed"]
    assert events[0].detail.startswith("Robin: ") and "exploded" not in events[0].detail


def test_transform_past_deadline_gives_placeholder_then_recovers(events: EventLog) -> None:
    slow = SleepyTransform(sleep_s=0.6)
    pipeline = make_pipeline(
        Profile.FACE_MASK, events, deadline_ms=50, transform_factory=lambda: slow
    )
    out = pipeline.process(to_video_frame(SOURCE, 0))
    assert _is_placeholder(video_frame_rgb(out))
    # still stuck: the next frame is a placeholder at once, without waiting another deadline
    started = time.monotonic()
    out = pipeline.process(to_video_frame(SOURCE, 1))
    assert time.monotonic() - started < 0.3
    assert _is_placeholder(video_frame_rgb(out))
    assert slow.finished.wait(5)
    time.sleep(0.05)
    out = pipeline.process(to_video_frame(SOURCE, 2))
    assert not video_frame_rgb(out).any()  # the transform's own (black) output again
    pipeline.close()
    assert events.kinds() == ["fail_closed", "recovered"]
    # only a deadline was missed: the room alerts the host about it only if it lasts
    assert events[0].late


def test_a_slow_transform_lowers_the_frame_rate_rather_than_sending_placeholders(
        events: EventLog) -> None:
    # 250 ms a frame, as a face mask with several faces on a busy node: every frame is still
    # the transform's own output, a little late (at the first 150 ms deadline, every one of
    # these was a placeholder card)
    slow = SleepyTransform(sleep_s=0.25, slow_calls=4)
    pipeline = make_pipeline(Profile.FACE_MASK, events, deadline_ms=DEADLINE_MS,
                             transform_factory=lambda: slow)
    for i in range(4):
        out = video_frame_rgb(pipeline.process(to_video_frame(SOURCE, i)))
        assert not out.any(), f"frame {i} was not the transform's output"
    pipeline.close()
    assert events.kinds() == [] and slow.calls == 4


class ColdTransform:
    """Like MediaPipe's graphs: the first run sets up (slowly), unless warmed before."""

    SETUP_S = 0.4

    def __init__(self) -> None:
        self.set_up = False
        self.warmed = threading.Event()

    def _setup(self) -> None:
        if not self.set_up:
            time.sleep(self.SETUP_S)
            self.set_up = True

    def warm(self) -> None:
        self._setup()
        self.warmed.set()

    def apply(self, rgb: np.ndarray, profile: Profile, t_s: float) -> TransformResult:
        self._setup()
        return TransformResult(np.zeros_like(rgb))

    def close(self) -> None:
        pass


def test_a_preloaded_transform_is_warmed_so_the_first_frame_is_processed(
    events: EventLog,
) -> None:
    cold = ColdTransform()
    pipeline = make_pipeline(Profile.BLUR, events, deadline_ms=100,
                             transform_factory=lambda: cold)
    pipeline.preload()  # as a publication does when it opens
    assert cold.warmed.wait(5)
    out = pipeline.process(to_video_frame(SOURCE, 0))
    pipeline.close()
    assert not video_frame_rgb(out).any()  # the transform's own output, not a placeholder
    assert events.kinds() == []


def test_the_first_frame_waits_for_the_models_and_is_processed(events: EventLog) -> None:
    # no preload, no waiting by the caller: the first frame is due while the models load
    cold = ColdTransform()
    pipeline = make_pipeline(Profile.BLUR, events, deadline_ms=50,
                             transform_factory=lambda: cold)
    out = pipeline.process(to_video_frame(SOURCE, 0))
    assert cold.warmed.is_set()
    assert not video_frame_rgb(out).any()  # processed, not the placeholder card
    assert events.kinds() == []
    # a load past the warm-up budget still fails closed with a placeholder, and quietly
    slower = ColdTransform()
    slower.SETUP_S = 1.0
    late = make_pipeline(Profile.BLUR, events, deadline_ms=50, warm_wait_s=0.3,
                         transform_factory=lambda: slower)
    card = video_frame_rgb(late.process(to_video_frame(SOURCE, 0)))
    assert np.abs(card.astype(np.int16) - SOURCE).mean() > 20  # the card, not the picture
    assert slower.warmed.wait(5)
    assert not video_frame_rgb(late.process(to_video_frame(SOURCE, 1))).any()
    # after a switch from `none` nothing waits: the unprocessed picture is replaced at once
    switched = ColdTransform()
    later = make_pipeline(Profile.NONE, events, deadline_ms=50,
                          transform_factory=lambda: switched)
    shown = video_frame_rgb(later.process(to_video_frame(SOURCE, 0))).astype(np.int16)
    assert np.abs(shown - SOURCE).mean() < 5  # `none`: the picture itself
    later.set_profile(Profile.BLUR)
    started = time.monotonic()
    card = video_frame_rgb(later.process(to_video_frame(SOURCE, 1)))
    assert time.monotonic() - started < ColdTransform.SETUP_S
    assert np.abs(card.astype(np.int16) - SOURCE).mean() > 20  # the card, not the picture
    pipeline.close()
    late.close()
    later.close()
    assert events.kinds() == []


def test_transform_returning_its_input_is_caught(events: EventLog) -> None:
    pipeline = make_pipeline(Profile.BLUR, events, transform_factory=IdentityTransform)
    out = video_frame_rgb(pipeline.process(to_video_frame(SOURCE, 0)))
    pipeline.close()
    assert _is_placeholder(out)
    assert events.kinds() == ["fail_closed"]


def test_missing_model_file_gives_placeholder_and_event(tmp_path: Path, events: EventLog) -> None:
    # a model directory without the model files: what a broken install looks like
    pipeline = make_pipeline(Profile.FACE_MASK, events, model_dir=tmp_path)
    for i in range(2):
        assert _is_placeholder(video_frame_rgb(pipeline.process(to_video_frame(SOURCE, i))))
    pipeline.close()
    assert events.kinds() == ["fail_closed"]
    assert "ModelLoadError" in events[0].detail


def test_models_refuse_a_directory_without_models(tmp_path: Path) -> None:
    try:
        MediaPipeTransform(model_dir=tmp_path)
    except ModelLoadError as exc:
        assert "missing" in str(exc)
    else:
        raise AssertionError("MediaPipeTransform loaded without model files")


def test_raising_event_listener_does_not_break_the_video() -> None:
    def listener(_: object) -> None:
        raise ValueError("listener bug")

    pipeline = make_pipeline(Profile.BLUR, None, transform_factory=RaisingTransform)
    pipeline._on_event = listener  # noqa: SLF001 - the listener is the thing under test
    out = video_frame_rgb(pipeline.process(to_video_frame(SOURCE, 0)))
    pipeline.close()
    assert _is_placeholder(out)


def test_closed_pipeline_sends_placeholders_and_closes_twice() -> None:
    pipeline = make_pipeline(Profile.BLUR, None, transform_factory=IdentityTransform)
    pipeline.close()
    pipeline.close()
    assert _is_placeholder(video_frame_rgb(pipeline.process(to_video_frame(SOURCE, 0))))


class I420Probe:
    """An I420-capable transform whose I420 output is chosen by the test."""

    def __init__(self, make: str) -> None:
        self.make = make
        self.rgb_calls = 0
        self.i420_calls = 0

    def apply(self, rgb: np.ndarray, profile: Profile, t_s: float) -> TransformResult:
        self.rgb_calls += 1
        return TransformResult(np.zeros_like(rgb))

    def apply_i420(self, i420: np.ndarray, profile: Profile, t_s: float) -> TransformResult:
        self.i420_calls += 1
        if self.make == "input":
            return TransformResult(i420)
        if self.make == "view":
            return TransformResult(i420[:-2])
        return TransformResult(np.zeros_like(i420))

    def close(self) -> None:
        pass


def test_i420_transform_returning_its_input_or_a_wrong_shape_is_caught() -> None:
    for make in ("input", "view"):
        probe = I420Probe(make)
        events = EventLog()
        pipeline = make_pipeline(Profile.BLUR, events, transform_factory=lambda p=probe: p)
        out = video_frame_rgb(pipeline.process(to_video_frame(SOURCE, 0)))
        pipeline.close()
        assert probe.i420_calls == 1 and _is_placeholder(out), make
        assert events.kinds() == ["fail_closed"]


def test_even_frames_take_the_i420_path_and_odd_frames_the_rgb_path() -> None:
    probe = I420Probe("zeros")
    pipeline = make_pipeline(Profile.BLUR, None, transform_factory=lambda: probe)
    even = pipeline.process(to_video_frame(SOURCE, 0))
    odd = pipeline.process(to_video_frame(np.ascontiguousarray(SOURCE[:479, :639]), 1))
    pipeline.close()
    assert (probe.i420_calls, probe.rgb_calls) == (1, 1)
    assert (even.width, even.height, odd.width, odd.height) == (640, 480, 639, 479)
    # an all-zero I420 image is no camera pixel: the pipeline hands it on as it is
    assert not np.asarray(even.to_ndarray()).any()
