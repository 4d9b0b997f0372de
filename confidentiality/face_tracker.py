"""Where to put a face mask: detections, expanded, held in place when a face is lost."""

from __future__ import annotations

PixelBox = tuple[int, int, int, int]  # x, y, w, h


def expand_face(x: float, y: float, w: float, h: float, width: int, height: int) -> PixelBox:
    """Grow a tight detector box to cover hair, forehead, ears and chin; clip to the frame."""
    # detectors box the eyes-to-mouth area; independent detectors (Haar) box higher and wider
    x0 = x - 0.35 * w
    x1 = x + 1.35 * w
    y0 = y - 0.6 * h
    y1 = y + 1.3 * h
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


class FaceTracker:
    """Keeps face masks on faces: this frame's detections, plus a hold when a face is lost."""

    def __init__(self, *, hold_s: float = 1.5, lost_enlarge: float = 1.4) -> None:
        self._hold_s = hold_s
        self._lost_enlarge = lost_enlarge
        self._last: list[PixelBox] = []
        self._last_seen_s: float | None = None
        self._size: tuple[int, int] | None = None

    def reset(self) -> None:
        """Forget every face (e.g. after a resolution change)."""
        self._last = []
        self._last_seen_s = None
        self._size = None

    def update(self, detected: list[PixelBox], t_s: float, size: tuple[int, int]) -> list[PixelBox]:
        """Boxes to cover in this frame, given this frame's (already expanded) detections."""
        if self._size != size:
            self.reset()
            self._size = size
        width, height = size
        if detected:
            # cover where the face was in the previous frame too: a face moving between the
            # detector's input and this composite must still be under the mask
            recent = (
                self._last
                if self._last_seen_s is not None and 0 <= t_s - self._last_seen_s < 0.2
                else []
            )
            self._last = list(detected)
            self._last_seen_s = t_s
            return [*detected, *(_union_near(recent, detected))]
        if self._last_seen_s is None or not 0 <= t_s - self._last_seen_s <= self._hold_s:
            self._last = []
            return []
        # face lost: keep the mask where it was, enlarged, for the hold period
        return [enlarge(b, self._lost_enlarge, width, height) for b in self._last]


def _union_near(previous: list[PixelBox], current: list[PixelBox]) -> list[PixelBox]:
    """Previous boxes that overlap a current one (same face, moved): kept as extra cover."""
    out = []
    for p in previous:
        for c in current:
            if (
                p[0] < c[0] + c[2]
                and c[0] < p[0] + p[2]
                and p[1] < c[1] + c[3]
                and c[1] < p[1] + p[3]
            ):
                out.append(p)
                break
    return out
