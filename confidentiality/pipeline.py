"""PrivacyPipeline: one published video track's frames in, privacy-safe frames out."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from confidentiality.bystander import BystanderMonitor
from confidentiality.events import EventKind, PrivacyEvent
from confidentiality.frames import (
    MIN_SIDE,
    PLACEHOLDER_SIZE,
    frame_to_i420,
    frame_to_rgb,
    i420_to_frame,
    output_size,
    rgb_to_frame,
    stamp,
)
from confidentiality.placeholder import CAMERA_OFF_REASON, PAUSED_REASON, placeholder_frame
from confidentiality.profiles import Profile
from confidentiality.transforms import (
    FrameTransform,
    I420Transform,
    MediaPipeTransform,
    TransformResult,
)

log = logging.getLogger(__name__)

TransformFactory = Callable[[], FrameTransform]

# how long a frame may wait for the models to finish loading (measured from when the load
# began) before it goes out as a placeholder: a member's camera starts on processed frames,
# not on a second of placeholder cards, and what the group sees first is a real picture
WARM_WAIT_S = 2.0

# how long a frame waits for its transform before it goes out as a placeholder. A slow
# transform lowers the frame rate, as the processor intends (latest frame wins): a frame that
# took 200 ms is still a processed, privacy-safe picture. At 150 ms (the first value) a node
# whose face mask took a little longer than that under load (several faces, a busy machine)
# sent nothing but placeholder cards, and kept both cores busy with transforms whose results
# it threw away. Past this long the transform is treated as stuck: it fails closed
DEADLINE_MS = 500.0


class PrivacyPipeline:
    """Applies a participant's privacy profile to each frame, failing closed.

    `process` is called from one media-plane worker thread. Transforms run in the pipeline's
    own thread so a stuck transform can be abandoned at its deadline; the MediaPipe graphs are
    built lazily in that thread and only ever used there.
    """

    def __init__(
        self,
        *,
        profile: Profile,
        display_name: str,
        deadline_ms: float = DEADLINE_MS,
        on_event: Callable[[PrivacyEvent], None] | None = None,
        transform_factory: TransformFactory | None = None,
        model_dir: Path | None = None,
        load_timeout_s: float = 10.0,
        warm_wait_s: float = WARM_WAIT_S,
    ) -> None:
        if deadline_ms <= 0:
            raise ValueError(f"deadline_ms must be positive, got {deadline_ms}")
        self._profile = Profile(profile)
        self._display_name = display_name
        self._deadline_s = deadline_ms / 1000.0
        self._on_event = on_event
        self._factory: TransformFactory = transform_factory or (
            lambda: MediaPipeTransform(model_dir=model_dir)
        )
        self._load_timeout_s = load_timeout_s
        self._warm_wait_s = warm_wait_s
        self._first_frame = True  # nothing has gone out yet
        self._lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="privacy-transform"
        )
        self._transform: FrameTransform | None = None
        self._load_future: concurrent.futures.Future[FrameTransform] | None = None
        self._load_started_s = 0.0
        self._load_failed = False
        self._pending: concurrent.futures.Future[TransformResult] | None = None
        self._failed = False
        self._closed = False
        self._bystander = BystanderMonitor()
        self._last_t_s: float | None = None
        # fail-closed placeholders made so far (for the node's metrics)
        self.placeholder_frames = 0

    # --- control ------------------------------------------------------------------------

    @property
    def profile(self) -> Profile:
        """The profile applied to the next frame processed."""
        with self._lock:
            return self._profile

    def set_profile(self, profile: Profile) -> None:
        """Switch profile; it applies from the next frame processed (thread-safe)."""
        new = Profile(profile)
        with self._lock:
            self._profile = new

    def preload(self) -> None:
        """Start loading the models in the pipeline's thread without waiting (optional)."""
        with self._lock:
            if not self._closed and self._load_future is None:
                self._start_load()

    def close(self) -> None:
        """Release the worker thread and models (safe twice)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            transform = self._transform
            self._transform = None
            load = self._load_future
            pending = self._pending
        if pending is not None:
            pending.cancel()
        if load is not None:
            load.cancel()  # not started yet: nothing to release

        def release() -> None:
            # models preloaded for a track that never sent a frame were never adopted as
            # `_transform`: close them too, or each such track leaves its graphs' threads
            # and memory behind. The load ran before this (one thread, in order)
            loaded = None
            if load is not None and not load.cancelled():
                with contextlib.suppress(Exception):
                    loaded = load.result()
            for item in {id(t): t for t in (transform, loaded) if t is not None}.values():
                item.close()

        # graphs are closed in the thread that built them; nothing queued is cancelled, so
        # the release runs even while a load is still in progress
        self._executor.submit(release)
        self._executor.shutdown(wait=False)

    # --- frames -------------------------------------------------------------------------

    def process(self, frame: av.VideoFrame) -> av.VideoFrame:
        """A privacy-safe yuv420p frame for `frame` under the current profile; never raises."""
        try:
            return self._process(frame)
        except Exception as exc:  # noqa: BLE001 - fail closed on anything unexpected
            log.exception("privacy pipeline error; sending placeholder")
            self._fail(f"internal error ({type(exc).__name__})")
            return self._safe_placeholder(frame)

    def _process(self, frame: av.VideoFrame) -> av.VideoFrame:
        profile = self.profile
        first, self._first_frame = self._first_frame, False
        if profile is Profile.NONE:
            return frame
        width, height = frame.width, frame.height
        size = output_size(width, height)
        if self._closed:
            return self._placeholder(frame, size)
        if width < MIN_SIDE or height < MIN_SIDE:
            self._fail(f"frame too small ({width}x{height})")
            return self._placeholder(frame, size)
        if profile is Profile.CAMERA_OFF:
            return stamp(placeholder_frame(*size, self._display_name, CAMERA_OFF_REASON), frame)
        transform = self._loaded_transform(first)
        if transform is None:
            return self._placeholder(frame, size)
        if self._pending is not None and not self._pending.done():
            # fail closed: the previous frame's transform is still stuck
            self._fail("transform still running past its deadline", late=True)
            return self._placeholder(frame, size)
        # a decoded frame is yuv420p: even-sized frames stay in I420 end to end (no RGB round
        # trip); odd sizes, which I420 arrays cannot hold, go through RGB
        use_i420 = isinstance(transform, I420Transform) and size[0] % 2 == 0 and size[1] % 2 == 0
        t_s = self._frame_time_s(frame)
        image: np.ndarray
        apply: Callable[[np.ndarray, Profile, float], TransformResult]
        if use_i420:
            assert isinstance(transform, I420Transform)
            image, apply = frame_to_i420(frame, size), transform.apply_i420
        else:
            image, apply = frame_to_rgb(frame, size), transform.apply
        future = self._executor.submit(apply, image, profile, t_s)
        self._pending = future
        try:
            result = future.result(timeout=self._deadline_s)
        except concurrent.futures.TimeoutError:
            self._fail(f"transform missed its {self._deadline_s * 1000:.0f} ms deadline",
                       late=True)
            return self._placeholder(frame, size)
        except Exception as exc:  # noqa: BLE001 - a transform bug must not leak pixels
            log.warning("privacy transform raised %s", type(exc).__name__, exc_info=True)
            self._fail(f"transform failed ({type(exc).__name__})")
            return self._placeholder(frame, size)
        out = result.image
        if (
            not isinstance(out, np.ndarray)
            or out.shape != image.shape
            or out.dtype != np.uint8
            or np.shares_memory(out, image)
        ):
            # fail closed: wrong shape or the untouched input handed back
            self._fail("transform returned an unusable frame")
            return self._placeholder(frame, size)
        if self.profile is not profile:
            # the profile changed while this frame was transformed: it was made under an
            # older profile, which may be laxer than the current one
            return self._placeholder(frame, size)
        self._recover()
        if result.faces is not None:
            self._count_faces(result.faces, t_s)
        return stamp(i420_to_frame(out) if use_i420 else rgb_to_frame(out), frame)

    # --- helpers ------------------------------------------------------------------------

    def _start_load(self) -> None:
        self._load_started_s = time.monotonic()
        self._load_future = self._executor.submit(self._load)

    def _load(self) -> FrameTransform:
        """Build the transform and, if it can, warm it (in the pipeline's thread)."""
        transform = self._factory()
        warm = getattr(transform, "warm", None)
        if callable(warm):
            try:
                warm()
            except Exception:  # noqa: BLE001 - a first frame that fails still fails closed
                log.warning("privacy transform could not warm up", exc_info=True)
        return transform

    def _loaded_transform(self, first: bool) -> FrameTransform | None:
        if self._transform is not None:
            return self._transform
        if self._load_failed:
            return None
        with self._lock:
            if self._load_future is None:
                self._start_load()
            future = self._load_future
        assert future is not None
        # the stream's first frame waits for the models while they are within their warm-up
        # budget (this thread is the media processor's own: waiting holds back nothing but
        # this publication's frames, and "latest frame wins" drops the backlog). Any later
        # frame waits only its deadline and goes out as a placeholder: after a switch from
        # `none` the group must not keep the last unprocessed picture on screen while the
        # models load; the placeholder card replaces it at once
        wait_s = self._deadline_s
        if first:
            wait_s = max(wait_s, self._warm_wait_s - (time.monotonic() - self._load_started_s))
        try:
            self._transform = future.result(timeout=wait_s)
        except concurrent.futures.TimeoutError:
            # still loading: a quiet placeholder, an alert only if it takes far too long
            if time.monotonic() - self._load_started_s > self._load_timeout_s:
                self._fail("privacy models took too long to load")
            return None
        except Exception as exc:  # noqa: BLE001 - ModelLoadError or anything the loader raised
            log.error("privacy models failed to load: %s", exc)
            self._load_failed = True
            self._fail(f"privacy models failed to load ({type(exc).__name__})")
            return None
        return self._transform

    def _frame_time_s(self, frame: av.VideoFrame) -> float:
        if frame.pts is not None and frame.time_base is not None:
            t_s = float(frame.pts * frame.time_base)
        else:
            t_s = time.monotonic()
        if self._last_t_s is not None and t_s < self._last_t_s - 1.0:
            # the clock went back (a new stream): start bystander timing afresh
            self._bystander = BystanderMonitor()
        self._last_t_s = t_s
        return t_s

    def _count_faces(self, faces: int, t_s: float) -> None:
        change = self._bystander.update(faces, t_s)
        if change == "bystander":
            self._emit(
                "bystander",
                f"{self._display_name}: more than one face in the camera",
                self._bystander.max_faces,
            )
        elif change == "bystander_cleared":
            self._emit(
                "bystander_cleared", f"{self._display_name}: one face in the camera again", faces
            )

    def _placeholder(self, frame: av.VideoFrame, size: tuple[int, int]) -> av.VideoFrame:
        # counted for the node's metrics (read by the processor running this pipeline)
        self.placeholder_frames += 1
        return stamp(placeholder_frame(*size, self._display_name, PAUSED_REASON), frame)

    def _safe_placeholder(self, frame: av.VideoFrame) -> av.VideoFrame:
        try:
            size = output_size(frame.width, frame.height)
        except Exception:  # noqa: BLE001 - not even a size: use the fixed card size
            size = PLACEHOLDER_SIZE
        try:
            return self._placeholder(frame, size)
        except Exception:  # noqa: BLE001 - last resort: a flat grey frame, still no pixels
            out = av.VideoFrame(PLACEHOLDER_SIZE[0], PLACEHOLDER_SIZE[1], "yuv420p")
            for plane in out.planes:
                plane.update(bytes([128]) * plane.buffer_size)
            return out

    def _fail(self, reason: str, *, late: bool = False) -> None:
        if not self._failed:
            self._failed = True
            self._emit("fail_closed", f"{self._display_name}: {PAUSED_REASON} ({reason})",
                       late=late)

    def _recover(self) -> None:
        if self._failed:
            self._failed = False
            self._emit("recovered", f"{self._display_name}: video restored")

    def _emit(self, kind: EventKind, detail: str, faces: int = 0, *, late: bool = False
              ) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(PrivacyEvent(kind=kind, detail=detail, faces=faces, late=late))
        except Exception:  # noqa: BLE001 - a listener must not break the video path
            log.exception("privacy event listener raised")
