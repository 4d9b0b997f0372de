"""Run a corpus clip through a privacy pipeline and look for faces in what comes out.

Two checks, both tied to the real faces the clip lists for every frame (a detection or a
sharp patch anywhere else is not a face, by the corpus's own list):

- **Face detail shown** (no detector involved): how much of each real face's detail reaches
  the viewer. Inside the face's box (hair line to chin) the fine detail of the camera frame
  (eyes, brows, nostrils, lips, hair: a band-pass of the luma, 2-8 px) is compared with the
  same band of the output, pixel by pixel over a small window. A pixel of the face is *shown*
  when the source has detail there and the output carries that same detail (correlation
  above 0.5, at least a quarter of its strength). A mask, a silhouette or the background
  blur carry none; a face copied from the camera carries all of it, through VP8 too. This
  catches what no detector finds: a face cut by the frame's edge, turned away, or half
  behind a hand.

  A face counts as shown when more than SHOWN_LIMIT of its detailed pixels are shown. Across
  the corpus's uncovered faces one eye is 12-14 % of a face's detailed pixels, the eyes
  25-30 %, the mouth and chin 24-28 %: 12 % is less than one eye. A face under its mask
  measures 0-9 % (the mask's and the silhouette's edges lying along an edge of the photograph,
  hair at the box's corners).

- **Independent detectors** (Haar frontal and profile, dlib HOG; tests/support/detectors.py)
  on each real face's neighbourhood: a detection covering LEAK_OVERLAP of a real face's box
  (or of its own box, whichever is smaller) is a face shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import cv2
import numpy as np

from confidentiality.placeholder import PAUSED_REASON, placeholder_rgb
from tests.support.corpus import Clip
from tests.support.detectors import DETECTORS, Box, DetectorName, detect_on_faces, near
from tests.support.faces import to_video_frame, video_frame_rgb

# an output detection is a leak when it covers at least this share of a real face's box (or
# of the detection's own box, whichever is smaller): a box on a masked face's edge, half on
# the mask, is still a face shown
LEAK_OVERLAP = 0.3
# more than this share of a face's detailed pixels shown is a face shown (see above)
SHOWN_LIMIT = 0.12

_BAND = (0.8, 3.0)  # Gaussian sigmas of the band-pass: detail of 2-8 px
_WINDOW = 3.0  # sigma of the window the correlation is taken over
_TEXTURED = 4.0  # band-pass energy (grey levels squared) from which a source pixel has detail
_CORRELATED = 0.5
_STRENGTH = 0.25


def _band(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.GaussianBlur(grey, (0, 0), _BAND[0]) - cv2.GaussianBlur(grey, (0, 0), _BAND[1])


def shown_map(out: np.ndarray, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shown, detailed): bool maps of where the source has detail, and where the output
    carries that same detail."""
    a, b = _band(out), _band(src)

    def window(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (0, 0), _WINDOW)

    ab, aa, bb = window(a * b), window(a * a), window(b * b)
    detailed = bb > _TEXTURED
    corr = ab / np.sqrt(aa * bb + 1e-3)
    return detailed & (corr > _CORRELATED) & (aa > _STRENGTH * bb), detailed


def _region(box: Box, shape: tuple[int, ...]) -> tuple[slice, slice, Box]:
    """A window around `box` wide enough for the filters, and the box inside that window."""
    h, w = shape[:2]
    m = 12
    x, y, bw, bh = box
    x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(w, x + bw + m), min(h, y + bh + m)
    return slice(y0, y1), slice(x0, x1), (x - x0, y - y0, bw, bh)


def detail_shown(
    out: np.ndarray, src: np.ndarray, box: Box, *, outside: np.ndarray | None = None
) -> float:
    """Share of the face's detailed pixels whose detail the output shows (0 when the box has
    no detail); with `outside` (a bool map), only shown pixels where it is set count."""
    ys, xs, (x, y, bw, bh) = _region(box, src.shape)
    shown, detailed = shown_map(out[ys, xs], src[ys, xs])
    inner = (slice(max(0, y), y + bh), slice(max(0, x), x + bw))
    n = int(detailed[inner].sum())
    if n == 0:
        return 0.0
    hit = shown[inner]
    if outside is not None:
        hit = hit & outside[ys, xs][inner]
    return int(hit.sum()) / n


class FrameMatcher:
    """Which frame of a clip a received picture shows (the stream loops, frames are dropped
    and delayed): the frame whose fine detail correlates best with it. The parts of a person
    shown and the edges of the blurred background are the camera's own detail, sharp only at
    the frame they came from; a zoom or a pan moves them by a pixel or more per frame."""

    SIZE = (320, 240)

    # a picture with less than this share left visible is not matched by what remains
    MIN_VISIBLE = 0.05

    def __init__(self, frames: Sequence[np.ndarray]) -> None:
        self._raw = np.stack([self._band_of(f) for f in frames])
        self._bands = np.stack([self._normalised(b) for b in self._raw])

    def _band_of(self, rgb: np.ndarray) -> np.ndarray:
        small = cv2.resize(rgb, self.SIZE, interpolation=cv2.INTER_AREA)
        return _band(small).ravel()

    @staticmethod
    def _normalised(b: np.ndarray) -> np.ndarray:
        b = b - b.mean(axis=-1, keepdims=True)
        return b / (np.linalg.norm(b, axis=-1, keepdims=True) + 1e-6)

    def _signature(self, rgb: np.ndarray) -> np.ndarray:
        return self._normalised(self._band_of(rgb))

    def match(self, rgb: np.ndarray) -> tuple[int, float]:
        """(frame index, correlation) of the best-matching frame."""
        scores = self._bands @ self._signature(rgb)
        i = int(np.argmax(scores))
        return i, float(scores[i])

    def match_visible(self, rgb: np.ndarray, hidden: np.ndarray) -> tuple[int, float]:
        """`match` on the pixels not `hidden` (a bool map at the picture's size) alone.

        A face mask may cover most of a close-up: the flat masks and their edges then
        outweigh the camera's detail left between them, and the whole picture matches no
        frame. The detail left (the background, a shoulder) is still the camera's own, sharp
        only at its frame. The masks' edges are left out with them. (-1, 0.0) when too
        little is left to tell."""
        hid = cv2.resize(hidden.astype(np.uint8), self.SIZE, interpolation=cv2.INTER_NEAREST)
        visible = ~(cv2.dilate(hid, np.ones((9, 9), np.uint8)) > 0).ravel()
        if visible.mean() < self.MIN_VISIBLE:
            return -1, 0.0
        scores = self._normalised(self._raw[:, visible]) @ self._normalised(
            self._band_of(rgb)[visible])
        i = int(np.argmax(scores))
        return i, float(scores[i])


# the card sent while a pipeline warms up or misses its deadline, by its background colour
_CARD_RGB = placeholder_rgb(64, 64, "x", PAUSED_REASON)[0, 0].astype(np.int16)
_CARD_NEAR = 16  # grey levels per channel: VP8 moves flat colour by a few
_CARD_SHARE = 0.5


def is_placeholder(rgb: np.ndarray) -> bool:
    """Whether a received picture is the placeholder card rather than the camera processed.

    Not a match against the camera's frame: a face mask may hide most of a close-up person
    (the head and the shoulders under it), leaving too little of the camera's own detail to
    tell one frame from another, while the card is unmistakable by its flat colour."""
    near = np.abs(rgb.astype(np.int16) - _CARD_RGB).max(axis=2) <= _CARD_NEAR
    return float(near.mean()) >= _CARD_SHARE


@dataclass
class FaceCheck:
    """What the checks found on one output frame."""

    shown: list[tuple[Box, float]]  # every real face and its share of detail shown
    found: dict[DetectorName, list[Box]] | None = None  # detections on real faces

    def leaks(self) -> list[tuple[str, Box, float]]:
        """(check, box, share or 1.0) for every face shown."""
        out = [("detail", b, s) for b, s in self.shown if s > SHOWN_LIMIT]
        for name, boxes in (self.found or {}).items():
            out += [(name, b, 1.0) for b in boxes]
        return out


def check_frame(
    out: np.ndarray, src: np.ndarray, faces: Sequence[Box], *, detectors: bool = False
) -> FaceCheck:
    """Both checks on one output frame against the source frame it was made from."""
    check = FaceCheck([(b, detail_shown(out, src, b)) for b in faces])
    if detectors:
        check.found = on_faces(out, faces)
    return check


def on_faces(rgb: np.ndarray, faces: Sequence[Box]) -> dict[DetectorName, list[Box]]:
    """Independent detections on the real faces (deduplicated)."""
    found = detect_on_faces(rgb, faces)
    return {d: sorted(set(near(found[d], faces, LEAK_OVERLAP))) for d in DETECTORS}


def _on_faces_task(job: tuple[np.ndarray, Sequence[Box]]) -> dict[DetectorName, list[Box]]:
    return on_faces(*job)


def detect_many(
    jobs: Iterable[tuple[np.ndarray, Sequence[Box]]], pool: Executor | None = None
) -> list[dict[DetectorName, list[Box]]]:
    """`on_faces` for each (frame, faces), in a process pool when given one."""
    if pool is None:
        return [_on_faces_task(j) for j in jobs]
    return list(pool.map(_on_faces_task, jobs, chunksize=2))


def as_sent(rgb: np.ndarray) -> np.ndarray:
    """A camera frame as the pipeline receives it (through yuv420p, as a decoder hands it
    over): what its output is compared with."""
    return video_frame_rgb(to_video_frame(rgb))


def source_as_sent(clip: Clip, i: int) -> np.ndarray:
    """Frame i of the clip as the pipeline receives it."""
    return as_sent(clip.frames[i])


@dataclass
class ClipReport:
    """What the checks found in one clip's input and output frames."""

    clip: str
    frames: int = 0
    faces: int = 0  # real faces in view, summed over the frames checked for detail
    detail_checked: int = 0  # output frames checked for face detail
    detail_max: float = 0.0  # the most of one face's detail shown
    checked_in: int = 0  # input frames the detectors looked at
    whole_in: int = 0  # real faces wholly in view and >= 40 px in those frames
    # of the whole faces, those each detector found
    found_in: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DETECTORS, 0))
    found_any_in: int = 0  # of the whole faces, those at least one detector found
    checked_out: int = 0  # output frames the detectors looked at
    # detections on real faces in the output (each one a failing check)
    found_out: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DETECTORS, 0))
    leaks: list[tuple[int, str, Box, float]] = field(default_factory=list)

    def add_output(self, i: int, check: FaceCheck) -> None:
        """Count one checked output frame."""
        self.detail_checked += 1
        self.faces += len(check.shown)
        self.detail_max = max([self.detail_max, *(s for _, s in check.shown)])
        if check.found is not None:
            self.checked_out += 1
            for name, boxes in check.found.items():
                self.found_out[name] += len(boxes)
        self.leaks += [(i, *leak) for leak in check.leaks()]

    def add_input(self, faces: Sequence[Box], found: dict[DetectorName, list[Box]]) -> None:
        """Count one input frame the detectors looked at."""
        self.checked_in += 1
        whole = [b for b in faces if whole_face(b)]
        self.whole_in += len(whole)
        hits = {name: [bool(near(found[name], [b])) for b in whole] for name in DETECTORS}
        for name in DETECTORS:
            self.found_in[name] += sum(hits[name])
        self.found_any_in += sum(any(hits[n][k] for n in DETECTORS) for k in range(len(whole)))

    def row(self) -> str:
        """One line of the per-clip table."""
        cells = " ".join(f"{self.found_in[d]:>5}/{self.found_out[d]:<3}" for d in DETECTORS)
        return (
            f"{self.clip:<15} {self.frames:>6} {self.faces:>6} {self.detail_max:>7.0%} "
            f"{self.checked_in:>4}/{self.checked_out:<4} {self.found_any_in:>4}/{self.whole_in:<4}"
            f" {cells}  {len(self.leaks):>5}"
        )


HEADER = (
    f"{'clip':<15} {'frames':>6} {'faces':>6} {'detail':>7} {'det. in/out':>9} "
    f"{'whole':>9} " + " ".join(f"{d[:9]:>9}" for d in DETECTORS) + "  leaks\n"
    f"{'':<15} {'':>6} {'in view':>6} {'max':>7} {'frames':>11} {'found':>9} "
    + " ".join(f"{'in/out':>9}" for _ in DETECTORS)
)


def whole_face(box: Box, size: tuple[int, int] = (640, 480), min_px: int = 40) -> bool:
    """A face wholly in the frame and at least `min_px` across: one any detector should
    find in the camera's picture (cut, tiny faces are there to test the pipeline, not the
    detectors)."""
    x, y, w, h = box
    return min(w, h) >= min_px and x > 0 and y > 0 and x + w < size[0] and y + h < size[1]


def run_clip(
    process: Callable[[object], object],
    clip: Clip,
    on_output: Callable[[int, np.ndarray], None] | None = None,
    *,
    start: int = 0,
) -> list[np.ndarray] | None:
    """Every frame of the clip from `start` through `process` (a pipeline's), in order. With
    `on_output`, each output RGB frame is handed to it with its frame index and nothing is
    kept; otherwise all are returned."""
    outs: list[np.ndarray] = []
    for i, rgb in enumerate(clip.frames[start:], start):
        out = video_frame_rgb(process(to_video_frame(rgb, i)))  # type: ignore[arg-type]
        if on_output is None:
            outs.append(out)
        else:
            on_output(i, out)
    return None if on_output is not None else outs
