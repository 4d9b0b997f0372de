"""Where to put a face mask: detections, expanded, each face held in place when it is lost."""

from __future__ import annotations

from dataclasses import dataclass

PixelBox = tuple[int, int, int, int]  # x, y, w, h


def expand_face(x: float, y: float, w: float, h: float, width: int, height: int) -> PixelBox:
    """Grow a tight detector box to cover hair, forehead, ears and chin; clip to the frame."""
    # detectors box the eyes-to-mouth area; independent detectors (Haar) box higher and wider,
    # a head turned in profile reaches further to one side than its box says, and the chin of
    # a tilted head, or of a face half behind a hand (whose box then sits too high), reaches
    # well below it
    x0 = x - 0.45 * w
    x1 = x + 1.45 * w
    y0 = y - 0.65 * h
    y1 = y + 1.6 * h
    return _clip(x0, y0, x1, y1, width, height)


def enlarge(box: PixelBox, factor: float, width: int, height: int) -> PixelBox:
    """The box grown about its centre by `factor`, clipped to the frame."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return _clip(
        cx - w * factor / 2,
        cy - h * factor / 2,
        cx + w * factor / 2,
        cy + h * factor / 2,
        width,
        height,
    )


def _clip(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> PixelBox:
    ix0, iy0 = max(0, int(x0)), max(0, int(y0))
    ix1, iy1 = min(width, int(x1 + 0.999)), min(height, int(y1 + 0.999))
    return (ix0, iy0, max(0, ix1 - ix0), max(0, iy1 - iy0))


@dataclass
class _Track:
    box: PixelBox  # the last detected (expanded) box
    seen_s: float  # when it was last detected
    step: tuple[float, float] = (0.0, 0.0)  # centre motion per second at the last detection


class FaceTracker:
    """Keeps a mask on every face: this frame's detections, plus each lost face held.

    Faces are tracked one by one: a face missed in this frame keeps its mask (where it was,
    moved on by its last motion and enlarged) for `hold_s`, whether or not other faces are
    found in the same frame, so one detected face never vouches for another.
    """

    def __init__(self, *, hold_s: float = 1.5, lost_enlarge: float = 1.4) -> None:
        self._hold_s = hold_s
        self._lost_enlarge = lost_enlarge
        self._tracks: list[_Track] = []
        self._size: tuple[int, int] | None = None

    def reset(self) -> None:
        """Forget every face (e.g. after a resolution change)."""
        self._tracks = []
        self._size = None

    def update(self, detected: list[PixelBox], t_s: float, size: tuple[int, int]) -> list[PixelBox]:
        """Boxes to cover in this frame, given this frame's (already expanded) detections."""
        if self._size != size:
            self.reset()
            self._size = size
        width, height = size
        cover: list[PixelBox] = list(detected)
        live = [t for t in self._tracks if 0 <= t_s - t.seen_s <= self._hold_s]
        pairs = _pairs(live, detected)
        kept: list[_Track] = []
        matched: set[int] = set()
        for k, track in enumerate(live):
            age_s = t_s - track.seen_s
            hit = pairs.get(k)
            if hit is not None:
                matched.add(hit)
                box = detected[hit]
                # cover where the face was a moment ago too: a face moving between the
                # detector's input and this composite must still be under the mask
                if age_s < 0.2:
                    cover.append(track.box)
                dt = max(age_s, 1e-3)
                step = ((_cx(box) - _cx(track.box)) / dt, (_cy(box) - _cy(track.box)) / dt)
                kept.append(_Track(box, t_s, step if age_s < 0.5 else (0.0, 0.0)))
                continue
            # fail closed: lost this frame, so held where it was, moved on by its last motion
            # (at most one box size) and grown, until the hold runs out
            x, y, w, h = track.box
            dx = max(-w, min(w, track.step[0] * age_s))
            dy = max(-h, min(h, track.step[1] * age_s))
            moved = (int(x + dx), int(y + dy), w, h)
            grow = self._lost_enlarge + 0.4 * min(1.0, age_s / self._hold_s)
            cover.append(enlarge(moved, grow, width, height))
            cover.append(enlarge(track.box, self._lost_enlarge, width, height))
            kept.append(track)
        kept.extend(_Track(d, t_s) for i, d in enumerate(detected) if i not in matched)
        self._tracks = kept
        return [b for b in cover if b[2] > 0 and b[3] > 0]


def _pairs(tracks: list[_Track], detected: list[PixelBox]) -> dict[int, int]:
    """Which detection (index) continues which track (index), nearest first.

    A detection continues a track only when its centre lies inside the track's box and the
    two are of like size: overlap alone is not enough, because the grown boxes of faces one
    above the other (a child in front of a parent) overlap, and a track taken over by the
    wrong face would drop the mask from the face it was holding.
    """
    candidates = []
    for k, track in enumerate(tracks):
        tx, ty, tw, th = track.box
        for i, d in enumerate(detected):
            inside = tx <= _cx(d) <= tx + tw and ty <= _cy(d) <= ty + th
            alike = 0.5 <= (d[2] * d[3]) / max(1, tw * th) <= 2.0
            if inside and alike:
                dist = (_cx(d) - _cx(track.box)) ** 2 + (_cy(d) - _cy(track.box)) ** 2
                candidates.append((dist, k, i))
    pairs: dict[int, int] = {}
    used: set[int] = set()
    for _, k, i in sorted(candidates):
        if k not in pairs and i not in used:
            pairs[k] = i
            used.add(i)
    return pairs


def _cx(b: PixelBox) -> float:
    return b[0] + b[2] / 2


def _cy(b: PixelBox) -> float:
    return b[1] + b[3] / 2
