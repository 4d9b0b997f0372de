"""Face detectors independent of MediaPipe, used to check what the privacy pipeline sends.

- OpenCV's bundled Haar cascades: frontal, and profile (the cascade finds faces turned one
  way; the mirrored image gives the other way).
- dlib's HOG face detector (dlib-bin wheel, Boost licence; its model is compiled into the
  library): five views, frontal, turned left, turned right and tilted each way. A second
  family of features (histograms of gradients, a linear SVM) from a different training set,
  so a face one misses the other often finds.

`detect_all` runs them on a whole frame. `detect_on_faces` runs them where the real faces of
a corpus frame are: on each face's neighbourhood (the face and one face size around it),
scaled so the face is FACE_PX across, the size at which all three work well (dlib's window
is 80 px; a face of 30 px in the frame is found far more often scaled up). On the corpus
input it finds more of the real faces than the whole frame does, in about half the time, and
only detections on real faces count as faces shown anyway (a detection elsewhere in the frame
is, by the corpus's own list of faces, a false positive).

No package on the registries reachable here ships YuNet's or the res10 SSD's weights in a
form OpenCV loads (see tests/support/corpus/SOURCES.md), so dlib's detector is the second,
non-MediaPipe, detector.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Literal

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in pixels
DetectorName = Literal["haar_frontal", "haar_profile", "dlib_hog"]
DETECTORS: tuple[DetectorName, ...] = ("haar_frontal", "haar_profile", "dlib_hog")


@functools.cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + name  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"cannot load cascade {path}")
    return cascade


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def _boxes(found: Sequence[Sequence[int]]) -> list[Box]:
    return [(int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in found]


def haar_frontal(rgb: np.ndarray) -> list[Box]:
    """Frontal faces (haarcascade_frontalface_default), 24 px and up."""
    found = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
        _grey(rgb), scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)
    )
    return _boxes(found)


def haar_profile(rgb: np.ndarray) -> list[Box]:
    """Faces in profile, turned either way (haarcascade_profileface on the image and mirror)."""
    grey = _grey(rgb)
    cascade = _cascade("haarcascade_profileface.xml")
    w = grey.shape[1]
    found = _boxes(
        cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    )
    mirrored = cascade.detectMultiScale(
        np.ascontiguousarray(grey[:, ::-1]), scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)
    )
    found += [(w - x - bw, y, bw, bh) for x, y, bw, bh in _boxes(mirrored)]
    return found


@functools.cache
def _dlib_detector() -> Callable[..., object]:
    import dlib

    return dlib.get_frontal_face_detector()  # type: ignore[no-any-return]


def dlib_hog(rgb: np.ndarray, upsample: int = 1) -> list[Box]:
    """Faces dlib's HOG detector finds, the image upsampled once by default (faces from
    ~40 px; without upsampling from ~80 px)."""
    detector = _dlib_detector()
    rects = detector(np.ascontiguousarray(rgb), upsample)  # type: ignore[operator]
    h, w = rgb.shape[:2]
    out = []
    for r in rects:  # type: ignore[attr-defined]
        x0, y0 = max(0, r.left()), max(0, r.top())
        x1, y1 = min(w, r.right() + 1), min(h, r.bottom() + 1)
        if x1 > x0 and y1 > y0:
            out.append((x0, y0, x1 - x0, y1 - y0))
    return out


DETECT: dict[DetectorName, Callable[[np.ndarray], list[Box]]] = {
    "haar_frontal": haar_frontal,
    "haar_profile": haar_profile,
    "dlib_hog": dlib_hog,
}


def detect_all(rgb: np.ndarray) -> dict[DetectorName, list[Box]]:
    """Every independent detector's boxes for one RGB image."""
    return {name: fn(rgb) for name, fn in DETECT.items()}


FACE_PX = 96  # a real face's size in the crop the detectors see (detect_on_faces)

# on crops scaled to FACE_PX the face is large enough for dlib without upsampling
_ON_FACES: dict[DetectorName, Callable[[np.ndarray], list[Box]]] = {
    "haar_frontal": haar_frontal,
    "haar_profile": haar_profile,
    "dlib_hog": functools.partial(dlib_hog, upsample=0),
}


def detect_on_faces(rgb: np.ndarray, faces: Sequence[Box]) -> dict[DetectorName, list[Box]]:
    """Every independent detector on each face's neighbourhood, scaled so the face is
    FACE_PX across; boxes in frame pixels (a face found from two crops is listed twice)."""
    out: dict[DetectorName, list[Box]] = {name: [] for name in DETECTORS}
    h, w = rgb.shape[:2]
    for x, y, bw, bh in faces:
        size = max(bw, bh)
        if size < 8:
            continue
        x0, y0 = max(0, x - size), max(0, y - size)
        x1, y1 = min(w, x + bw + size), min(h, y + bh + size)
        s = FACE_PX / size
        crop = cv2.resize(
            rgb[y0:y1, x0:x1],
            None,
            fx=s,
            fy=s,
            interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
        )
        for name, fn in _ON_FACES.items():
            out[name] += [
                (int(x0 + cx / s), int(y0 + cy / s), int(cw / s), int(ch / s))
                for cx, cy, cw, ch in fn(crop)
            ]
    return out


def overlap(a: Box, b: Box) -> float:
    """Intersection area over the smaller box's area (0 when apart)."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    smaller = min(a[2] * a[3], b[2] * b[3])
    return ix * iy / smaller if smaller else 0.0


def near(found: Sequence[Box], faces: Sequence[Box], min_overlap: float = 0.3) -> list[Box]:
    """The boxes in `found` that overlap any of `faces`."""
    return [f for f in found if any(overlap(f, e) >= min_overlap for e in faces)]
