"""An illustrated avatar drawn from face landmarks: no camera pixel is ever copied."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# face-mesh landmark indices (MediaPipe canonical face model)
_FOREHEAD, _CHIN = 10, 152
_CHEEK_L, _CHEEK_R = 234, 454
_EYE_L_OUT, _EYE_L_IN, _EYE_L_TOP, _EYE_L_BOT = 33, 133, 159, 145
_EYE_R_IN, _EYE_R_OUT, _EYE_R_TOP, _EYE_R_BOT = 362, 263, 386, 374
_LIP_TOP, _LIP_BOT = 13, 14

# soft palette: features differ from the skin in hue, hardly in brightness, so the avatar
# reads as a friendly drawing to people but carries no face-like light/dark pattern for a
# face detector (or anyone) to mistake for a real face
_BG = (214, 222, 230)
_BODY = (150, 178, 196)
_HEAD = (236, 204, 178)
_HAIR = (214, 196, 150)
_FEATURE = (120, 200, 235)


@dataclass(frozen=True, slots=True)
class AvatarPose:
    """What the avatar shows, in relative coordinates of the frame."""

    cx: float  # head centre, 0..1 of width
    cy: float  # head centre, 0..1 of height
    face_h: float  # face height (forehead to chin), 0..1 of height
    roll_rad: float  # head tilt, positive = clockwise on screen
    mouth_open: float  # 0 closed .. 1 wide open
    eyes_open: tuple[float, float]  # left, right: 0 closed .. 1 open


NEUTRAL_POSE = AvatarPose(0.5, 0.42, 0.36, 0.0, 0.0, (1.0, 1.0))


def pose_from_landmarks(lm: np.ndarray, width: int, height: int) -> AvatarPose:
    """The avatar pose for 468 relative face-mesh landmarks on a width x height frame."""
    pts = lm[:, :2] * np.array([width, height], np.float32)

    def dist(a: int, b: int) -> float:
        return float(np.linalg.norm(pts[a] - pts[b]))

    face_h_px = max(dist(_FOREHEAD, _CHIN), 1.0)
    centre = (pts[_FOREHEAD] + pts[_CHIN]) / 2
    dx, dy = pts[_EYE_R_OUT] - pts[_EYE_L_OUT]
    roll = math.atan2(float(dy), float(dx))
    mouth = dist(_LIP_TOP, _LIP_BOT) / face_h_px
    left = dist(_EYE_L_TOP, _EYE_L_BOT) / max(dist(_EYE_L_OUT, _EYE_L_IN), 1.0)
    right = dist(_EYE_R_TOP, _EYE_R_BOT) / max(dist(_EYE_R_IN, _EYE_R_OUT), 1.0)
    # openness ratios: ~0.25-0.35 open, < 0.12 blink; mouth ~0 closed, 0.25 wide
    return AvatarPose(
        cx=float(centre[0]) / width,
        cy=float(centre[1]) / height,
        face_h=face_h_px / height,
        roll_rad=roll,
        mouth_open=float(np.clip(mouth / 0.25, 0.0, 1.0)),
        eyes_open=(
            float(np.clip((left - 0.1) / 0.2, 0, 1)),
            float(np.clip((right - 0.1) / 0.2, 0, 1)),
        ),
    )


def _rot(x: float, y: float, c: float, s: float) -> tuple[float, float]:
    return x * c - y * s, x * s + y * c


def draw_avatar(width: int, height: int, pose: AvatarPose | None) -> np.ndarray:
    """An RGB avatar image of width x height; the neutral avatar when pose is None."""
    p = pose if pose is not None else NEUTRAL_POSE
    img = np.empty((height, width, 3), np.uint8)
    img[:] = _BG
    face_h = max(8.0, p.face_h * height)
    cx, cy = p.cx * width, p.cy * height
    c, s = math.cos(p.roll_rad), math.sin(p.roll_rad)
    deg = math.degrees(p.roll_rad)

    def at(dx: float, dy: float) -> tuple[int, int]:
        rx, ry = _rot(dx * face_h, dy * face_h, c, s)
        return int(cx + rx), int(cy + ry)

    def ax(a: float, b: float) -> tuple[int, int]:
        return max(1, int(a * face_h)), max(1, int(b * face_h))

    aa = cv2.LINE_AA
    # shoulders stay upright under the head: bodies tilt less than heads
    cv2.ellipse(img, (int(cx), int(cy + 1.25 * face_h)), ax(0.95, 0.6), 0, 180, 360, _BODY, -1, aa)
    cv2.ellipse(img, at(0.0, -0.08), ax(0.46, 0.58), deg, 180, 360, _HAIR, -1, aa)
    cv2.ellipse(img, at(0.0, 0.0), ax(0.40, 0.52), deg, 0, 360, _HEAD, -1, aa)
    cv2.ellipse(img, at(0.0, -0.32), ax(0.42, 0.2), deg, 180, 360, _HAIR, -1, aa)
    thick = max(1, int(face_h * 0.025))
    for side, openness in ((-1, p.eyes_open[0]), (1, p.eyes_open[1])):
        centre = at(side * 0.16, -0.06)
        if openness < 0.35:  # a blink: a gentle closed-eye arc
            cv2.ellipse(img, centre, ax(0.06, 0.02), deg, 0, 180, _FEATURE, thick, aa)
        else:
            cv2.ellipse(img, centre, ax(0.05, 0.05 * openness), deg, 0, 360, _FEATURE, -1, aa)
    mouth_h = 0.015 + 0.12 * p.mouth_open
    if p.mouth_open < 0.1:
        cv2.ellipse(img, at(0.0, 0.22), ax(0.12, 0.05), deg, 10, 170, _FEATURE, thick, aa)
    else:
        cv2.ellipse(img, at(0.0, 0.24), ax(0.1, mouth_h), deg, 0, 360, _FEATURE, -1, aa)
    return img
