"""Run a corpus clip through a privacy pipeline and look for faces in what comes out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from tests.support.corpus import Clip
from tests.support.detectors import DETECTORS, Box, DetectorName, detect_all, near
from tests.support.faces import to_video_frame, video_frame_rgb

# an output detection is a leak when it covers at least this share of a real face's box (or
# of the detection's own box, whichever is smaller): a box on a masked face's edge, half on
# the mask, is still a face shown
LEAK_OVERLAP = 0.3


@dataclass
class ClipReport:
    """What the detectors found in one clip's input and output frames."""

    clip: str
    frames: int = 0
    checked: int = 0  # output frames checked
    checked_in: int = 0  # input frames checked
    faces_in_view: int = 0  # real faces in the checked input frames (the clip's own boxes)
    found_in: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DETECTORS, 0))
    found_out: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DETECTORS, 0))
    raw_out: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DETECTORS, 0))
    leaks: list[tuple[int, str, Box]] = field(default_factory=list)

    def row(self) -> str:
        """One line of the per-clip table."""
        cells = " ".join(f"{self.found_in[d]:>5}/{self.found_out[d]:<3}" for d in DETECTORS)
        raw = " ".join(f"{self.raw_out[d]:>3}" for d in DETECTORS)
        return (
            f"{self.clip:<15} {self.frames:>6} {self.checked:>7} {self.faces_in_view:>6} "
            f"{cells}   {raw}"
        )


HEADER = (
    f"{'clip':<15} {'frames':>6} {'checked':>7} {'faces':>6} "
    + " ".join(f"{d[:9]:>9}" for d in DETECTORS)
    + "   raw out ("
    + ", ".join(DETECTORS)
    + ")\n"
    + f"{'':<15} {'':>6} {'':>7} {'':>6} "
    + " ".join(f"{'in/out':>9}" for _ in DETECTORS)
)


def run_clip(process: Callable[[object], object], clip: Clip) -> list[np.ndarray]:
    """The output RGB frames for every frame of the clip, through `process` (a pipeline's)."""
    outs = []
    for i, rgb in enumerate(clip.frames):
        out = process(to_video_frame(rgb, i))
        outs.append(video_frame_rgb(out))  # type: ignore[arg-type]
    return outs


def detect_frames(
    frames: Sequence[np.ndarray], pool: Executor | None = None
) -> list[dict[DetectorName, list[Box]]]:
    """Every independent detector on each frame, in a process pool when given one."""
    if pool is None:
        return [detect_all(f) for f in frames]
    return list(pool.map(detect_all, frames, chunksize=4))


def check_clip(
    clip: Clip,
    outputs: Sequence[np.ndarray],
    *,
    step: int = 1,
    input_step: int | None = None,
    pool: Executor | None = None,
) -> ClipReport:
    """Run the independent detectors on every `step`-th output frame (and `input_step`-th
    input frame, by default the same).

    The rule: an output detection is a leak if it overlaps a real face of that frame (the
    clip's own boxes, which list every real face, so a face shown where a detector also
    fires in the input is always among them). Detections elsewhere (Haar on window blinds,
    a cartoon badge on a jacket) are false positives: counted as `raw_out`, never excused
    when they touch a real face. Faces found in the input count only where they overlap a
    real face.
    """
    report = ClipReport(clip.name, frames=len(outputs))
    out_idx = list(range(0, len(outputs), step))
    in_idx = list(range(0, len(outputs), input_step or step))
    found_out = detect_frames([outputs[i] for i in out_idx], pool)
    found_in = detect_frames([clip.frames[i] for i in in_idx], pool)
    for i, found in zip(in_idx, found_in, strict=True):
        report.checked_in += 1
        report.faces_in_view += len(clip.faces[i])
        for name in DETECTORS:
            report.found_in[name] += len(near(found[name], clip.faces[i]))
    for i, found in zip(out_idx, found_out, strict=True):
        report.checked += 1
        for name in DETECTORS:
            report.raw_out[name] += len(found[name])
            leaked = near(found[name], clip.faces[i], LEAK_OVERLAP)
            report.found_out[name] += len(leaked)
            report.leaks.extend((i, name, b) for b in leaked)
    return report
