"""Real-face video made from skimage's astronaut, plus independent checks (OpenCV Haar)."""

from __future__ import annotations

import fractions
import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np
import skimage.data

Box = tuple[int, int, int, int]  # x, y, w, h in pixels
ClipKind = Literal["static", "pan", "zoom", "leave_and_return", "two_faces"]
CLIP_KINDS: tuple[ClipKind, ...] = ("static", "pan", "zoom", "leave_and_return", "two_faces")

# the astronaut's face in the 512x512 source image (Haar finds (177, 66, 95, 95), MediaPipe
# (178, 83, 95, 95)); this box covers both with forehead and chin
ASTRONAUT_FACE: Box = (168, 58, 115, 130)
# the "world" the camera looks at: astronaut in the middle of a sharp brick wall
_WORLD_W, _WORLD_H = 1536, 1024
_ASTRO_AT = (512, 256)  # top-left of the astronaut inside the world
# the second face (two_faces clip): the astronaut's face, mirrored, scaled, pasted to the right
_SECOND_SCALE = 0.8
_SECOND_AT = (1060, 330)


@functools.cache
def _world() -> np.ndarray:
    brick = skimage.data.brick()  # 512x512 grey, sharp texture
    tile = cv2.cvtColor(brick, cv2.COLOR_GRAY2RGB)
    tile = (tile.astype(np.float32) * np.array([1.0, 0.85, 0.7], np.float32)).astype(np.uint8)
    world = np.tile(tile, (_WORLD_H // 512, _WORLD_W // 512, 1))
    x0, y0 = _ASTRO_AT
    world[y0 : y0 + 512, x0 : x0 + 512] = skimage.data.astronaut()
    return np.ascontiguousarray(world)


@functools.cache
def _world_two_faces() -> np.ndarray:
    world = _world().copy()
    ax, ay, aw, ah = ASTRONAUT_FACE
    # a generous crop (head and some shoulders) so the pasted face looks like a person
    crop = skimage.data.astronaut()[ay - 20 : ay + ah + 60, ax - 30 : ax + aw + 30]
    crop = np.ascontiguousarray(crop[:, ::-1])
    crop = cv2.resize(crop, None, fx=_SECOND_SCALE, fy=_SECOND_SCALE, interpolation=cv2.INTER_AREA)
    x0, y0 = _SECOND_AT
    world[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
    return world


def _second_face_world_box() -> Box:
    _, _, aw, ah = ASTRONAUT_FACE
    x0, y0 = _SECOND_AT
    s = _SECOND_SCALE
    return (x0 + int(30 * s), y0 + int(20 * s), int(aw * s), int(ah * s))


def _camera(kind: ClipKind, i: int, n: int, size: tuple[int, int]) -> np.ndarray:
    """Affine map world -> frame for frame i of n (scale, then shift)."""
    w, h = size
    t = i / max(n - 1, 1)
    # base view: the astronaut filling the frame height, face upper-middle
    scale = h / 560.0
    cx, cy = _ASTRO_AT[0] + 256.0, _ASTRO_AT[1] + 270.0  # world point at the frame centre
    if kind == "pan":
        # ~4 px per frame at 640 wide: a person shifting in their seat
        cx += (t - 0.5) * 260 / scale * (w / 640)
    elif kind == "zoom":
        scale *= 1.0 + 0.6 * t
        cy -= 60 * t  # zoom towards the face
    elif kind == "leave_and_return":
        # out to the right and back: |sin| so the middle frames have no one in view
        cx -= math.sin(math.pi * t) * 900
    elif kind == "two_faces":
        cx += 190
    m = np.array([[scale, 0.0, w / 2 - scale * cx], [0.0, scale, h / 2 - scale * cy]])
    return m


def _map_box(box: Box, m: np.ndarray, size: tuple[int, int]) -> Box | None:
    x, y, bw, bh = box
    x0, y0 = m @ np.array([x, y, 1.0])
    x1, y1 = m @ np.array([x + bw, y + bh, 1.0])
    w, h = size
    cx0, cy0, cx1, cy1 = max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)
    # a face less than 40% in view is not a face a detector is expected to find
    if cx1 <= cx0 or cy1 <= cy0 or (cx1 - cx0) * (cy1 - cy0) < 0.4 * (x1 - x0) * (y1 - y0):
        return None
    return (int(cx0), int(cy0), int(cx1 - cx0), int(cy1 - cy0))


def astronaut_frames(
    kind: ClipKind, n: int, size: tuple[int, int] = (640, 480)
) -> list[np.ndarray]:
    """n RGB frames (uint8, HxWx3) of the astronaut clip `kind` at `size` (width, height)."""
    if kind not in CLIP_KINDS:
        raise ValueError(f'unknown clip kind "{kind}"; expected one of {CLIP_KINDS}')
    world = _world_two_faces() if kind == "two_faces" else _world()
    frames = []
    for i in range(n):
        m = _camera(kind, i, n, size)
        frames.append(
            cv2.warpAffine(world, m, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
        )
    return frames


def face_box_in_source(
    kind: ClipKind, i: int, n: int, size: tuple[int, int] = (640, 480)
) -> list[Box]:
    """Expected face boxes in frame i of the clip (empty when the face is out of view)."""
    m = _camera(kind, i, n, size)
    ax, ay, aw, ah = ASTRONAUT_FACE
    boxes = [_map_box((ax + _ASTRO_AT[0], ay + _ASTRO_AT[1], aw, ah), m, size)]
    if kind == "two_faces":
        boxes.append(_map_box(_second_face_world_box(), m, size))
    return [b for b in boxes if b is not None]


def person_box_in_source(
    kind: ClipKind, i: int, n: int, size: tuple[int, int] = (640, 480)
) -> Box | None:
    """The astronaut's whole figure (the 512x512 source image) in frame i, clipped to the frame."""
    m = _camera(kind, i, n, size)
    return _map_box((_ASTRO_AT[0], _ASTRO_AT[1], 512, 512), m, size)


@functools.cache
def _haar() -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"cannot load Haar cascade {path}")
    return cascade


def haar_faces(rgb: np.ndarray) -> list[Box]:
    """Faces OpenCV's bundled Haar cascade finds (independent of MediaPipe)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    found = _haar().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
    return [tuple(int(v) for v in b) for b in found]  # type: ignore[misc]


def overlap(a: Box, b: Box) -> float:
    """Intersection area over the smaller box's area (0 when apart)."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    smaller = min(a[2] * a[3], b[2] * b[3])
    return ix * iy / smaller if smaller else 0.0


def faces_overlapping(
    found: Sequence[Box], expected: Sequence[Box], min_overlap: float = 0.3
) -> list[Box]:
    """The boxes in `found` that overlap any expected face box."""
    return [f for f in found if any(overlap(f, e) >= min_overlap for e in expected)]


def box_mask(shape: tuple[int, ...], boxes: Sequence[Box]) -> np.ndarray:
    """A bool HxW mask that is True inside the boxes."""
    mask = np.zeros(shape[:2], bool)
    for x, y, w, h in boxes:
        mask[max(0, y) : y + h, max(0, x) : x + w] = True
    return mask


def laplacian_var(rgb: np.ndarray, mask: np.ndarray) -> float:
    """Variance of the Laplacian (sharpness) of the grey image inside a bool mask."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    lap = cv2.Laplacian(grey, cv2.CV_64F)
    return float(lap[mask].var())


def write_y4m(path: Path, frames: Sequence[np.ndarray], fps: int = 15) -> Path:
    """Write RGB frames as a yuv420p .y4m file for Chromium's --use-file-for-fake-video-capture."""
    if not frames:
        raise ValueError("write_y4m needs at least one frame")
    h, w = frames[0].shape[:2]
    if w % 2 or h % 2:
        raise ValueError(f"y4m 4:2:0 needs even sizes, got {w}x{h}")
    with open(path, "wb") as f:
        # Chromium's parser accepts C420/C420jpeg/C420mpeg2/C420paldv (4:2:0) and reads W, H, F
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            if rgb.shape[:2] != (h, w):
                raise ValueError(f"frame size {rgb.shape[1]}x{rgb.shape[0]} differs from {w}x{h}")
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def to_video_frame(rgb: np.ndarray, index: int = 0, fps: int = 15) -> av.VideoFrame:
    """A yuv420p av.VideoFrame as a decoder would hand it over (pts in 1/90000 s)."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
        format="yuv420p"
    )
    frame.pts = index * 90000 // fps
    frame.time_base = fractions.Fraction(1, 90000)
    return frame


def video_frame_rgb(frame: av.VideoFrame) -> np.ndarray:
    """The frame's pixels as an RGB array."""
    return frame.to_ndarray(format="rgb24")
