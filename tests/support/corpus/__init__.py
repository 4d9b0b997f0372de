"""A harder face corpus: clips built at test time from photographs that ship in packages.

Each clip is 640x480, 15 fps, at least 100 frames: a "world" image composed from the source
photographs in this folder (see SOURCES.md for where each comes from and its licence), seen
through a moving camera, sometimes with a person walking in, things drawn over faces, or the
light turned down. Every real face in a source photograph is listed in FACES (boxes checked
by eye against what MediaPipe, dlib and Haar find at full size), and each clip says where
those faces are in every frame, so a check can tell a detection on a real face from a false
positive on a wall, a badge or a window blind.

Nothing here is tuned to the pipeline: the clips are what a camera in a group room could
show, and the checks use detectors that are not MediaPipe (tests/support/detectors.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from tests.support.detectors import Box

HERE = Path(__file__).resolve().parent
SIZE = (640, 480)
FPS = 15
FRAMES = 100

# every real face in each source photograph (x, y, w, h at the committed size), hair line to
# chin; detector false positives (a badge, window blinds, a jacket) are deliberately absent
FACES: dict[str, tuple[Box, ...]] = {
    "group1": ((184, 186, 114, 114), (414, 235, 108, 109), (724, 116, 109, 108)),
    "group2": ((156, 93, 99, 99), (441, 115, 118, 118), (704, 83, 120, 120)),
    "group3": ((275, 170, 126, 126), (510, 109, 147, 147), (744, 158, 121, 121)),
    "group4": ((130, 105, 100, 105), (306, 56, 109, 108), (464, 97, 119, 119), (613, 96, 91, 91)),
    "group5": (
        (544, 108, 104, 110),
        (386, 62, 103, 104),
        (298, 224, 105, 105),
        (682, 206, 121, 121),
        (177, 446, 123, 131),
    ),
    "group6": (
        (122, 255, 127, 127),
        (309, 178, 133, 135),
        (576, 167, 126, 126),
        (723, 141, 136, 136),
    ),
    "podium": ((263, 107, 132, 149),),
    "portrait_bright": ((184, 81, 156, 162),),
    "portrait_dark": ((286, 74, 267, 280),),
    "edge_cut": ((0, 109, 190, 241),),
}


@functools.cache
def source(name: str) -> np.ndarray:
    """A committed source photograph as RGB."""
    bgr = cv2.imread(str(HERE / f"{name}.jpg"), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"corpus image {name}.jpg is missing")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


@dataclass(frozen=True)
class Layer:
    """A source photograph (or a cut-out of one) placed in the world: top-left, scale."""

    name: str
    x: float
    y: float
    scale: float = 1.0
    cutout: bool = False  # only the person (GrabCut), for someone walking in


@dataclass
class Clip:
    """One clip: frames, and the real faces in each frame (clipped to it, if any part shows)."""

    name: str
    covers: str  # what the clip is there to test, in words
    frames: list[np.ndarray]
    faces: list[list[Box]]
    people: int  # real faces in the world (in view at some point)
    tags: tuple[str, ...] = field(default=())
    # where the frame shows the bare brick wall (no photograph): per frame, when known
    walls: list[np.ndarray] | None = None

    def first_frame_with(self, n: int, *, min_px: int = 24) -> int | None:
        """The first frame with `n` real faces wholly in view, each at least `min_px` wide."""
        w, h = SIZE
        for i, boxes in enumerate(self.faces):
            whole = [
                b
                for b in boxes
                if b[2] >= min_px and b[0] > 0 and b[1] > 0 and b[0] + b[2] < w and b[1] + b[3] < h
            ]
            if len(whole) >= n:
                return i
        return None


# --- building blocks ------------------------------------------------------------------------


@functools.cache
def _backdrop(w: int, h: int) -> np.ndarray:
    """A sharp brick wall (skimage's brick): texture for the blur to remove, and no faces."""
    brick = cv2.cvtColor(skimage.data.brick(), cv2.COLOR_GRAY2RGB)
    tile = (brick.astype(np.float32) * np.array([1.0, 0.9, 0.78], np.float32)).astype(np.uint8)
    reps = (h // tile.shape[0] + 1, w // tile.shape[1] + 1, 1)
    return np.ascontiguousarray(np.tile(tile, reps)[:h, :w])


@functools.cache
def _cutout(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The person in a portrait and a 0/1 mask of them (OpenCV GrabCut, not MediaPipe)."""
    img = source(name)
    h, w = img.shape[:2]
    # GrabCut at half size (a few seconds less per clip); the mask is scaled back up
    half = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    mask = np.zeros(half.shape[:2], np.uint8)
    rect = (int(0.02 * w / 2), int(0.03 * h / 2), int(0.96 * w / 2), int(0.97 * h / 2))
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(
        cv2.cvtColor(half, cv2.COLOR_RGB2BGR), mask, rect, bgd, fgd, 3, cv2.GC_INIT_WITH_RECT
    )
    person = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    person = cv2.resize(person, (w, h), interpolation=cv2.INTER_NEAREST)
    # the face itself is always part of the cut-out (GrabCut may nibble at hair and cheeks)
    for x, y, bw, bh in FACES[name]:
        person[y : y + bh, x : x + bw] = 1
    return img, person


def _scaled(img: np.ndarray, scale: float, interp: int = cv2.INTER_AREA) -> np.ndarray:
    if scale == 1.0:
        return img
    h, w = img.shape[:2]
    return cv2.resize(
        img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp
    )


def _paste(
    world: np.ndarray, img: np.ndarray, x: int, y: int, alpha: np.ndarray | None = None
) -> None:
    h, w = img.shape[:2]
    wh, ww = world.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(ww, x + w), min(wh, y + h)
    if x1 <= x0 or y1 <= y0:
        return
    part = img[y0 - y : y1 - y, x0 - x : x1 - x]
    if alpha is None:
        world[y0:y1, x0:x1] = part
    else:
        a = alpha[y0 - y : y1 - y, x0 - x : x1 - x, None].astype(bool)
        world[y0:y1, x0:x1] = np.where(a, part, world[y0:y1, x0:x1])


def _compose(size: tuple[int, int], layers: Sequence[Layer]) -> tuple[np.ndarray, list[Box]]:
    """A world image of `size` with the layers pasted in order, and its faces."""
    world = _backdrop(*size).copy()
    wall = np.full(size[::-1], 255, np.uint8)
    faces: list[Box] = []
    for layer in layers:
        if layer.cutout:
            img, person = _cutout(layer.name)
            alpha = _scaled(person, layer.scale, cv2.INTER_NEAREST)
        else:
            img, alpha = source(layer.name), None
        _paste(world, _scaled(img, layer.scale), round(layer.x), round(layer.y), alpha)
        covered = _scaled(np.zeros(img.shape[:2], np.uint8), layer.scale, cv2.INTER_NEAREST)
        _paste(wall, covered, round(layer.x), round(layer.y), alpha)
        faces.extend(_place(b, layer) for b in FACES[layer.name])
    _WALLS[id(world)] = wall
    return world, faces


_WALLS: dict[int, np.ndarray] = {}  # world image id -> its bare-wall map (255 = wall)


def _place(box: Box, layer: Layer) -> Box:
    x, y, w, h = box
    s = layer.scale
    return (round(layer.x + x * s), round(layer.y + y * s), round(w * s), round(h * s))


def _camera(cx: float, cy: float, zoom: float) -> np.ndarray:
    """World -> frame: world point (cx, cy) at the frame centre, `zoom` frame px per world px."""
    w, h = SIZE
    return np.array([[zoom, 0.0, w / 2 - zoom * cx], [0.0, zoom, h / 2 - zoom * cy]])


def _map_box(box: Box, m: np.ndarray) -> Box | None:
    """A world box in the frame, clipped; None when no part of it shows."""
    x, y, bw, bh = box
    corners = np.array([[x, y, 1.0], [x + bw, y, 1.0], [x, y + bh, 1.0], [x + bw, y + bh, 1.0]])
    pts = corners @ m.T
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    w, h = SIZE
    cx0, cy0, cx1, cy1 = max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        return None
    return (int(cx0), int(cy0), int(math.ceil(cx1 - cx0)), int(math.ceil(cy1 - cy0)))


def _render(world: np.ndarray, m: np.ndarray) -> np.ndarray:
    return cv2.warpAffine(world, m, SIZE, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def _ease(t: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * t)


CameraPath = Callable[[float], tuple[float, float, float]]  # t in 0..1 -> cx, cy, zoom


def _clip(
    name: str,
    covers: str,
    world: np.ndarray,
    faces: list[Box],
    path: CameraPath,
    *,
    n: int = FRAMES,
    post: Callable[[np.ndarray, int], np.ndarray] | None = None,
    tags: tuple[str, ...] = (),
) -> Clip:
    frames, per_frame, walls = [], [], []
    wall = _WALLS.get(id(world))
    for i in range(n):
        m = _camera(*path(i / (n - 1)))
        rgb = _render(world, m)
        if post is not None:
            rgb = post(rgb, i)
        frames.append(rgb)
        per_frame.append([b for b in (_map_box(f, m) for f in faces) if b is not None])
        if wall is not None:
            walls.append(
                cv2.warpAffine(
                    wall, m, SIZE, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE
                )
                > 0
            )
    return Clip(name, covers, frames, per_frame, len(faces), tags, walls or None)


# --- the clips ------------------------------------------------------------------------------


def _group_zoom() -> Clip:
    # the scenario that failed: a group of five on a staircase, faces at several sizes, the
    # camera slowly zooming in towards one side so faces end up cut by the frame's edges
    world, faces = _compose((1200, 900), [Layer("group5", 120, 100)])
    return _clip(
        "group_zoom",
        "5 people, slow zoom; faces grow and are cut by the edges",
        world,
        faces,
        lambda t: (600 - 90 * _ease(t), 450 - 40 * _ease(t), 0.62 + 0.55 * _ease(t)),
        tags=("group", "zoom", "edge"),
    )


def _group_pan() -> Clip:
    world, faces = _compose((1300, 900), [Layer("group6", 170, 66)])
    return _clip(
        "group_pan",
        "4 people, camera pans across: faces enter and leave at the edges",
        world,
        faces,
        lambda t: (330 + 640 * t, 420, 0.95),
        tags=("group", "pan", "edge"),
    )


def _small_faces() -> Clip:
    # three groups far from the camera: faces ~30-40 px across, about 1/20 of the frame width
    s = 0.3
    layers = [
        Layer("group1", 40, 170, s),
        Layer("group3", 340, 140, s),
        Layer("group4", 640, 160, s),
        Layer("podium", 950, 90, 0.33),
    ]
    world, faces = _compose((1200, 600), layers)
    return _clip(
        "small_faces",
        "11 people far away (faces ~1/20 of the frame), slow pan",
        world,
        faces,
        lambda t: (350 + 400 * t, 300, 1.0),
        tags=("group", "small", "pan"),
    )


def _edge_faces() -> Clip:
    # the outer faces straddle the left and right edges, swaying in and out by ~25 px
    world, faces = _compose((1100, 800), [Layer("group3", 70, 40)])
    return _clip(
        "edge_faces",
        "3 people, outer faces cut by the left and right frame edges",
        world,
        faces,
        lambda t: (550 + 25 * math.sin(2 * math.pi * t), 330, 0.93),
        tags=("group", "edge"),
    )


def _edge_portraits() -> Clip:
    # the frame spans world x 160..800 (give or take the drift): the left face is cut at 160,
    # the right one at 800
    layers = [
        Layer("edge_cut", 110, 40, 0.55),
        Layer("portrait_bright", 640, 30, 0.6),
        Layer("portrait_dark", 290, 60, 0.5),
    ]
    world, faces = _compose((1100, 640), layers)
    return _clip(
        "edge_portraits",
        "a face cut by the left edge, another by the right, one in the middle; drifting",
        world,
        faces,
        lambda t: (480 + 14 * math.sin(2 * math.pi * t), 330 + 20 * t, 1.0),
        tags=("edge", "skin"),
    )


@functools.cache
def _turned(name: str, yaw: float, roll_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """A portrait turned: a perspective warp about the face's vertical axis, then a tilt.

    A synthetic turn of a frontal face (the photographs themselves supply real half-turned
    faces); returns the image and the 3x3 map from source to result.
    """
    img = source(name)
    h, w = img.shape[:2]
    fx, fy, fw, fh = FACES[name][0]
    cx = fx + fw / 2
    # the near side of the head keeps its height, the far side shrinks: a yaw of `yaw` (-1..1)
    squeeze = 1.0 - 0.55 * abs(yaw)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    shrink = 0.12 * abs(yaw) * h
    left = (cx - (cx - 0) * squeeze, shrink if yaw > 0 else 0.0)
    right = (cx + (w - cx) * squeeze, shrink if yaw < 0 else 0.0)
    dst = np.float32(
        [[left[0], left[1]], [right[0], right[1]], [right[0], h - right[1]], [left[0], h - left[1]]]
    )
    persp = cv2.getPerspectiveTransform(src, dst)
    rot = np.vstack([cv2.getRotationMatrix2D((cx, fy + fh / 2), roll_deg, 1.0), [0, 0, 1]])
    full = rot @ persp
    out = cv2.warpPerspective(img, full, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return out, full


def _profiles() -> Clip:
    # real half-turned and downcast faces (group2), plus a portrait turning its head from one
    # side to the other with a tilt (a warp of a real face: weaker, but it moves)
    world, faces = _compose((1500, 760), [Layer("group2", 40, 40, 0.72)])
    base = world.copy()
    name = "portrait_bright"
    frames_yaw = [math.sin(2 * math.pi * k / 25) for k in range(25)]
    head_faces = FACES[name]
    scale = 0.62
    x0, y0 = 800, 60

    def post_world(i: int) -> tuple[np.ndarray, list[Box]]:
        yaw = frames_yaw[i % 25]
        roll = 25 * math.sin(2 * math.pi * i / 40)
        img, h_map = _turned(name, round(yaw, 2), round(roll))
        w_ = base.copy()
        small = _scaled(img, scale)
        _paste(w_, small, x0, y0)
        fx, fy, fw, fh = head_faces[0]
        pts = np.float32([[fx, fy, 1], [fx + fw, fy, 1], [fx, fy + fh, 1], [fx + fw, fy + fh, 1]])
        p = pts @ h_map.T
        p = p[:, :2] / p[:, 2:]
        bx0, by0 = p.min(axis=0)
        bx1, by1 = p.max(axis=0)
        face = (
            round(x0 + bx0 * scale),
            round(y0 + by0 * scale),
            round((bx1 - bx0) * scale),
            round((by1 - by0) * scale),
        )
        return w_, [*faces, face]

    frames, per_frame = [], []
    for i in range(FRAMES):
        w_, fs = post_world(i)
        t = i / (FRAMES - 1)
        m = _camera(560 + 180 * t, 330, 0.78)
        frames.append(_render(w_, m))
        per_frame.append([b for b in (_map_box(f, m) for f in fs) if b is not None])
    return Clip(
        "profiles",
        "half-turned and downcast faces; a head turning side to side and tilting",
        frames,
        per_frame,
        4,
        ("profile", "group", "pan"),
    )


def _occlusion() -> Clip:
    world, faces = _compose((1100, 800), [Layer("group3", 70, 70)])
    f0, f1, f2 = faces

    def post(rgb: np.ndarray, i: int) -> np.ndarray:
        m = _camera(550, 360, 0.75)
        out = rgb.copy()
        # sunglasses on the first face: a dark band over the eyes
        b = _map_box((f0[0] + 10, f0[1] + int(0.33 * f0[3]), f0[2] - 20, int(0.2 * f0[3])), m)
        if b:
            cv2.rectangle(out, (b[0], b[1]), (b[0] + b[2], b[1] + b[3]), (20, 20, 24), -1)
        # a face mask on the second: a pale rounded shape over nose, mouth and chin
        b = _map_box((f1[0] + 12, f1[1] + int(0.52 * f1[3]), f1[2] - 24, int(0.45 * f1[3])), m)
        if b:
            cv2.ellipse(
                out,
                (b[0] + b[2] // 2, b[1] + b[3] // 2),
                (b[2] // 2, b[3] // 2),
                0,
                0,
                360,
                (200, 215, 225),
                -1,
            )
        # a hand (a skin-coloured palm and fingers) passing across the third face
        b = _map_box(f2, m)
        if b:
            t = i / (FRAMES - 1)
            hx = int(b[0] - b[2] + 3 * b[2] * t)
            hy = b[1] + b[3] // 2
            cv2.ellipse(out, (hx, hy), (b[2] // 3, b[3] // 3), 0, 0, 360, (190, 140, 110), -1)
            for k in range(4):
                fx = hx - b[2] // 4 + k * b[2] // 6
                cv2.line(out, (fx, hy), (fx, hy - b[3] // 2), (190, 140, 110), max(3, b[2] // 12))
        return out

    return _clip(
        "occlusion",
        "3 people: sunglasses, a face mask, a hand passing over a face",
        world,
        faces,
        lambda t: (550, 360, 0.75),
        post=post,
        tags=("occlusion", "group"),
    )


def _skin_tones() -> Clip:
    layers = [Layer("portrait_dark", 80, 40, 0.5), Layer("portrait_bright", 520, 20, 0.55)]
    world, faces = _compose((900, 620), layers)
    return _clip(
        "skin_tones",
        "dark and bright skin side by side, pan and zoom",
        world,
        faces,
        lambda t: (430 + 40 * math.sin(2 * math.pi * t), 280, 0.85 + 0.25 * _ease(t)),
        tags=("skin", "zoom"),
    )


def _low_light() -> Clip:
    world, faces = _compose((1100, 800), [Layer("group1", 70, 80)])
    rng = np.random.default_rng(7)
    noise = [rng.normal(0, 5, (SIZE[1], SIZE[0], 1)).astype(np.float32) for _ in range(8)]
    lut = (255 * (np.arange(256) / 255.0) ** 1.8 * 0.55).astype(np.uint8)

    def post(rgb: np.ndarray, i: int) -> np.ndarray:
        dark = cv2.LUT(rgb, lut).astype(np.float32) + noise[i % len(noise)]
        return np.clip(dark, 0, 255).astype(np.uint8)

    return _clip(
        "low_light",
        "3 people in a dim room: gamma 1.8, half the light, sensor noise",
        world,
        faces,
        lambda t: (550, 400, 0.72 + 0.2 * _ease(t)),
        post=post,
        tags=("low_light", "group", "zoom"),
    )


def _bright() -> Clip:
    world, faces = _compose((1200, 900), [Layer("group4", 120, 80)])
    lut = np.clip(255 * (np.arange(256) / 255.0) ** 0.6 * 1.15, 0, 255).astype(np.uint8)
    return _clip(
        "bright",
        "4 people, over-exposed, slow pan",
        world,
        faces,
        lambda t: (520 + 160 * t, 450, 0.75),
        post=lambda rgb, i: cv2.LUT(rgb, lut),
        tags=("bright", "group", "pan"),
    )


def _walk_in() -> Clip:
    # one member at their camera; someone walks in from beyond the right edge and stops
    # behind them, to their right
    backdrop = _backdrop(960, 720)
    member, member_alpha = _cutout("portrait_dark")
    ms = 0.62
    member, member_alpha = _scaled(member, ms), _scaled(member_alpha, ms, cv2.INTER_NEAREST)
    mx, my = 180, 110
    member_faces = [_place(b, Layer("portrait_dark", mx, my, ms)) for b in FACES["portrait_dark"]]
    img, person = _cutout("portrait_bright")
    scale = 0.5
    small, alpha = _scaled(img, scale), _scaled(person, scale, cv2.INTER_NEAREST)
    ((fx, fy, fw, fh),) = FACES["portrait_bright"]
    m = _camera(480, 360, 1.0)
    frames, per_frame, walls = [], [], []
    for i in range(FRAMES):
        t = min(1.0, i / 70)  # walks in over ~4.7 s, then stays
        x = round(980 - 440 * _ease(t))
        y = round(130 + 6 * math.sin(i / 2.0))  # a step's bob
        w_ = backdrop.copy()
        _paste(w_, small, x, y, alpha)
        # the member sits in front of whoever comes in behind them
        _paste(w_, member, mx, my, member_alpha)
        frames.append(_render(w_, m))
        wall = np.full((*backdrop.shape[:2], 1), 255, np.uint8)
        _paste(wall, np.zeros((*alpha.shape, 1), np.uint8), x, y, alpha)
        _paste(wall, np.zeros((*member_alpha.shape, 1), np.uint8), mx, my, member_alpha)
        walls.append(cv2.warpAffine(wall, m, SIZE, flags=cv2.INTER_NEAREST) > 0)
        walker = (
            round(x + fx * scale),
            round(y + fy * scale),
            round(fw * scale),
            round(fh * scale),
        )
        per_frame.append(
            [b for b in (_map_box(f, m) for f in [*member_faces, walker]) if b is not None]
        )
    return Clip(
        "walk_in",
        "a member at the camera; a second person walks in from the right edge and stays",
        frames,
        per_frame,
        2,
        ("walk_in", "edge", "skin"),
        walls,
    )


def _podium_far() -> Clip:
    # a speaker far off at a lectern (face ~1/20 of the frame) and the camera zooming out
    world, faces = _compose(
        (1400, 1000), [Layer("podium", 560, 200, 0.5), Layer("portrait_bright", 200, 330, 0.4)]
    )
    return _clip(
        "podium_far",
        "two people standing far off, the camera zooming out: faces from ~60 px down to ~25 px",
        world,
        faces,
        lambda t: (700, 480, 1.0 - 0.55 * _ease(t)),
        tags=("small", "zoom"),
    )


BUILDERS: dict[str, Callable[[], Clip]] = {
    "group_zoom": _group_zoom,
    "group_pan": _group_pan,
    "small_faces": _small_faces,
    "edge_faces": _edge_faces,
    "edge_portraits": _edge_portraits,
    "profiles": _profiles,
    "occlusion": _occlusion,
    "skin_tones": _skin_tones,
    "low_light": _low_light,
    "bright": _bright,
    "walk_in": _walk_in,
    "podium_far": _podium_far,
}
CLIPS: tuple[str, ...] = tuple(BUILDERS)


@functools.cache
def clip(name: str) -> Clip:
    """The clip `name` (built once per process)."""
    if name not in BUILDERS:
        raise ValueError(f'unknown corpus clip "{name}"; expected one of {CLIPS}')
    return BUILDERS[name]()
