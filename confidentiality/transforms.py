"""The privacy transforms themselves: I420 (or RGB) in, the same out, in one worker thread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from confidentiality import yuv
from confidentiality.avatar import draw_avatar, pose_from_landmarks
from confidentiality.face_tracker import FaceTracker, PixelBox, expand_face
from confidentiality.models import Models
from confidentiality.profiles import Profile

# the small RGB image every model sees: segmentation (the landscape model scales it to its own
# 256x144 input; its cost does not depend on this size), face detection and the face mesh
_MODEL_WIDTH = 320
_MASK_RGB = (112, 124, 140)  # opaque face mask: flat, no texture for a detector to find
_SILHOUETTE_RGB = (96, 108, 122)  # a hidden person: flat fill, no features
# face_mask counts a pixel as person from this segmentation probability (blur: 0.5): an
# uncertain pixel is then hidden unless a detected face vouches for it, not left as background
_FACE_MASK_PERSON_P = 0.3
# the body a detected face vouches for, in face boxes (the detectors' merged box): from just
# under the chin, this many face widths either side of the face's centre line and this many
# face heights down (neck and upper chest). Everything else of a person (shoulders, hair above
# the mask, a raised arm, a second head whose face was not found) is hidden. Narrow and short
# on purpose: in a group, a neighbour's head sits beside a shoulder or below a chin, and a
# wider or deeper zone once showed such a head (cut by the frame's edge, so found by no
# detector) as part of someone else's body. Hiding shoulders is a cost; showing a face is not
# acceptable.
_BODY_HALF_WIDTH = 0.6
_BODY_TOP = 1.0
_BODY_DEPTH = 1.2
# the second look: what a detected face vouches for is searched again for faces, cut out of the
# full-size frame (so at up to twice the detectors' resolution of the whole frame) and no
# larger than this on its longer side, and widened past the zone by these shares of the
# largest face (a head whose face lies in the zone reaches above it)
_LOOK_MAX_SIDE = 384
_LOOK_ABOVE = 0.8
_LOOK_BESIDE = 0.5
# where the crop meets the frame's edge it is padded with flat grey by this share of its size:
# a face cut by the edge then looks like a face partly behind something flat, which the
# detectors find (they find faces behind masks and hands), where a face that simply ends at
# the image's border they mostly miss once a third of it is gone
_LOOK_PAD = 0.35
_LOOK_GREY = (128, 128, 128)
# a reused person mask is only trusted while the picture barely changed since it was made:
# mean absolute luma difference (0..255) of the 1/8-size images, above which we re-segment
_STILL_LUMA_DIFF = 6.0
# `blur` also reuses it while the picture moves moderately (a person shifting, a slow camera
# pan: ~11 on our pan clip), but shrunk first: the stale mask's edge may lie where the person
# was a frame ago, and shrinking it turns that edge into blurred person, never sharp
# background. Above this difference (a jump, a cut) we always re-segment.
_MOVING_LUMA_DIFF = 16.0
# Shrunk by 5x5 at the 320-wide segmentation scale (~5 px at 640x480) for a mask one frame
# old, 9x9 for two: on the pan clip (320x240, forward and back) what the stale mask shows
# sharp outside a fresh one is then 1.1% and 0.9% of the frame on average (unshrunk, one
# frame old: 2.3%), all along the person's outline, the order of the segmenter's own
# frame-to-frame jitter
_MOVING_ERODE = {1: np.ones((5, 5), np.uint8), 2: np.ones((9, 9), np.uint8)}


@dataclass(frozen=True, slots=True)
class TransformResult:
    """A transformed image (same layout as the input) and faces seen (None: not counted)."""

    image: np.ndarray
    faces: int | None = None


class FrameTransform(Protocol):
    """What PrivacyPipeline runs on each frame; built and used in one worker thread."""

    def apply(self, rgb: np.ndarray, profile: Profile, t_s: float) -> TransformResult:
        """Transform an HxWx3 RGB frame for `profile`; `t_s` is the frame time in seconds."""
        ...

    def close(self) -> None:
        """Release models (safe twice)."""
        ...


@runtime_checkable
class I420Transform(FrameTransform, Protocol):
    """A transform that also works on I420 arrays, sparing the RGB round trip per frame."""

    def apply_i420(self, i420: np.ndarray, profile: Profile, t_s: float) -> TransformResult:
        """Transform an even-sized I420 array ((H*3/2) x W) for `profile`; I420 out."""
        ...


class _Frame:
    """One frame's I420 planes, with the small derived images built at most once."""

    __slots__ = ("i420", "planes", "width", "height", "_rgb", "_tiny")

    def __init__(self, i420: np.ndarray) -> None:
        self.i420 = i420
        self.planes = yuv.planes(i420)
        self.width, self.height = yuv.i420_size(i420)
        self._rgb: np.ndarray | None = None
        self._tiny: np.ndarray | None = None

    def rgb(self) -> np.ndarray:
        """The frame as RGB, at most _MODEL_WIDTH wide (what the models see)."""
        if self._rgb is None:
            self._rgb = yuv.small_rgb(self.i420, _MODEL_WIDTH)
        return self._rgb

    def tiny_luma(self) -> np.ndarray:
        """Luma at 1/8 size: the blur's first step and the motion probe."""
        if self._tiny is None:
            self._tiny = yuv.tiny_luma(self.planes[0])
        return self._tiny


class MediaPipeTransform:
    """blur / face_mask / avatar with MediaPipe's bundled models, on I420 planes."""

    def __init__(
        self,
        *,
        model_dir: Path | None = None,
        # a mask serves at most this many frames (see _person_mask_small)
        segment_every: int = 3,
        # blur and avatar count faces for the bystander alert (both detectors, ~7 ms) at
        # ~4 Hz: a second face is counted within a quarter second of being findable, so the
        # host hears of it within 2 s, at a quarter of the per-frame cost. face_mask counts
        # every frame (it detects every frame anyway).
        count_faces_every: int = 4,
    ) -> None:
        self._models = Models(model_dir)
        self._segment_every = max(1, segment_every)
        self._count_every = max(1, count_faces_every)
        self._tracker = FaceTracker()
        self._frame_no = 0
        self._mask: np.ndarray | None = None  # last person mask (uint8 0/255, small)
        self._mask_profile: Profile | None = None
        self._mask_frame: tuple[int, int] = (0, 0)  # the frame size the mask was made for
        self._mask_tiny: np.ndarray | None = None  # the frame's tiny luma when segmented
        self._mask_age = 0  # frames since the mask was made
        # the small mask last scaled up, and it at luma and chroma size
        self._full_masks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def apply(self, rgb: np.ndarray, profile: Profile, t_s: float) -> TransformResult:
        """Transform an RGB frame of any size (through I420, padded to even sizes)."""
        h, w = rgb.shape[:2]
        src = np.ascontiguousarray(rgb)
        if w % 2 or h % 2:
            src = cv2.copyMakeBorder(src, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
        result = self.apply_i420(cv2.cvtColor(src, cv2.COLOR_RGB2YUV_I420), profile, t_s)
        out = cv2.cvtColor(result.image, cv2.COLOR_YUV2RGB_I420)
        return TransformResult(np.ascontiguousarray(out[:h, :w]), result.faces)

    def apply_i420(self, i420: np.ndarray, profile: Profile, t_s: float) -> TransformResult:
        """Transform an even-sized I420 array for `profile`; returns a new I420 array."""
        self._frame_no += 1
        frame = _Frame(i420)
        if profile is Profile.BLUR:
            return self._blur(frame)
        if profile is Profile.FACE_MASK:
            return self._face_mask(frame, t_s)
        if profile is Profile.AVATAR:
            return self._avatar(frame)
        raise ValueError(f'MediaPipeTransform cannot apply profile "{profile}"')

    # --- stages -------------------------------------------------------------------------

    def _person_mask_small(self, frame: _Frame, profile: Profile) -> np.ndarray:
        """Person mask at segmentation size; reused for the next frame if nothing moved."""
        tiny = frame.tiny_luma()
        self._mask_age += 1
        if (
            self._mask is not None
            and self._mask_profile is profile
            and self._mask_frame == (frame.width, frame.height)
            and self._mask_age < self._segment_every
            and self._mask_tiny is not None
        ):
            moved = cv2.norm(tiny, self._mask_tiny, cv2.NORM_L1) / tiny.size
            if moved <= _STILL_LUMA_DIFF:
                return self._mask
            kernel = _MOVING_ERODE.get(self._mask_age)
            if moved <= _MOVING_LUMA_DIFF and profile is Profile.BLUR and kernel is not None:
                return cv2.erode(self._mask, kernel)
        prob = self._models.person_mask(frame.rgb())
        threshold = _FACE_MASK_PERSON_P if profile is Profile.FACE_MASK else 0.5
        self._mask = (prob > threshold).astype(np.uint8) * 255
        self._mask_profile = profile
        self._mask_frame = (frame.width, frame.height)
        self._mask_tiny = tiny
        self._mask_age = 0
        return self._mask

    def _masks_at_frame_size(self, mask_small: np.ndarray, frame: _Frame) -> tuple[np.ndarray, ...]:
        """The person mask at luma and chroma size, kept while the small mask is reused."""
        cached = self._full_masks
        if cached is not None and cached[0] is mask_small:
            return cached[1], cached[2]
        w, h = frame.width, frame.height
        luma = cv2.resize(mask_small, (w, h), interpolation=cv2.INTER_LINEAR)
        chroma = cv2.resize(mask_small, (w // 2, h // 2), interpolation=cv2.INTER_LINEAR)
        self._full_masks = (mask_small, luma, chroma)
        return luma, chroma

    def _detect_all(self, frame: _Frame) -> list[PixelBox]:
        """Tight face boxes (pixels) from both detectors on this frame, duplicates merged."""
        w, h = frame.width, frame.height
        rgb = frame.rgb()
        # both models on every frame: the short-range one is surest on a face near the camera,
        # the full-range one finds the smaller faces further back (a second person, a child)
        found = self._models.faces(rgb) + self._models.faces(rgb, far=True)
        return _merged(
            [
                (int(f.x * w), int(f.y * h), max(1, int(f.w * w)), max(1, int(f.h * h)))
                for f in found
            ]
        )

    def _count_faces(self, frame: _Frame) -> int | None:
        """Faces counted with both detectors every few frames (bystanders)."""
        if self._frame_no % self._count_every != 0:
            return None
        return len(self._detect_all(frame))

    def _composite(self, frame: _Frame, mask_small: np.ndarray) -> tuple[np.ndarray, yuv.Planes]:
        """A new I420 image: the background blurred, the person's own pixels on top."""
        out = np.empty_like(frame.i420)
        dst = yuv.planes(out)
        src = frame.planes
        yuv.blur_planes_into(src, dst, frame.tiny_luma())
        luma_mask, chroma_mask = self._masks_at_frame_size(mask_small, frame)
        cv2.copyTo(src[0], luma_mask, dst[0])
        cv2.copyTo(src[1], chroma_mask, dst[1])
        cv2.copyTo(src[2], chroma_mask, dst[2])
        return out, dst

    def _blur(self, frame: _Frame) -> TransformResult:
        out, _ = self._composite(frame, self._person_mask_small(frame, Profile.BLUR))
        return TransformResult(out, self._count_faces(frame))

    def _face_mask(self, frame: _Frame, t_s: float) -> TransformResult:
        w, h = frame.width, frame.height
        mask_small = self._person_mask_small(frame, Profile.FACE_MASK)
        tight = self._detect_all(frame)
        extra = [
            b
            for b in self._second_look(frame, mask_small, tight)
            if not any(_same_face(b, t) for t in tight)
        ]
        detected = [expand_face(x, y, bw, bh, w, h) for x, y, bw, bh in tight + extra]
        cover = self._tracker.update(detected, t_s, (w, h))
        out, dst = self._composite(frame, mask_small)
        # only faces of the first look vouch for a body: what a face found on the second look
        # would vouch for has not itself been looked at twice
        _hide_unvouched(dst, mask_small, tight, (w, h))
        for x, y, bw, bh in cover:
            if bw > 0 and bh > 0:
                yuv.fill_rounded_rect(dst, (x, y, bw, bh), max(2, min(bw, bh) // 4), _MASK_RGB)
        return TransformResult(out, len(tight) + len(extra))

    def _second_look(
        self, frame: _Frame, mask_small: np.ndarray, tight: list[PixelBox]
    ) -> list[PixelBox]:
        """Faces inside the bodies the first look's faces vouch for (tight boxes, pixels).

        A face there that the first look missed (a child in front of a parent, a head cut by
        the frame's bottom edge under someone else's face, a small face beside a shoulder)
        would otherwise be shown as part of the other person's body. Both detectors look
        again at just that part of the frame, larger, with the frame's edges padded.
        """
        if not tight:
            return []
        w, h = frame.width, frame.height
        sh, sw = mask_small.shape
        shown = cv2.bitwise_and(mask_small, body_zones(tight, (w, h), (sw, sh)))
        points = cv2.findNonZero(shown)
        if points is None:
            return []
        bx, by, bw, bh = cv2.boundingRect(points)
        sx, sy = w / sw, h / sh
        face_w = max(b[2] for b in tight)
        face_h = max(b[3] for b in tight)
        x0 = max(0, int(bx * sx - _LOOK_BESIDE * face_w))
        y0 = max(0, int(by * sy - _LOOK_ABOVE * face_h))
        x1 = min(w, int((bx + bw) * sx + _LOOK_BESIDE * face_w) + 1)
        y1 = min(h, int((by + bh) * sy) + 1)
        if x1 - x0 < 16 or y1 - y0 < 16:
            return []
        rgb, (cx, cy, cw, ch) = yuv.crop_rgb(frame.i420, (x0, y0, x1 - x0, y1 - y0), _LOOK_MAX_SIDE)
        ph, pw = rgb.shape[:2]
        top = int(_LOOK_PAD * ph) if cy == 0 else 0
        bottom = int(_LOOK_PAD * ph) if cy + ch >= h else 0
        left = int(_LOOK_PAD * pw) if cx == 0 else 0
        right = int(_LOOK_PAD * pw) if cx + cw >= w else 0
        if top or bottom or left or right:
            rgb = cv2.copyMakeBorder(
                rgb, top, bottom, left, right, cv2.BORDER_CONSTANT, value=_LOOK_GREY
            )
        found = self._models.faces(rgb) + self._models.faces(rgb, far=True)
        full_h, full_w = rgb.shape[:2]
        scale = cw / pw  # frame pixels per pixel of the crop
        return _merged(
            [
                (
                    int(cx + (f.x * full_w - left) * scale),
                    int(cy + (f.y * full_h - top) * scale),
                    max(1, int(f.w * full_w * scale)),
                    max(1, int(f.h * full_h * scale)),
                )
                for f in found
            ]
        )

    def _avatar(self, frame: _Frame) -> TransformResult:
        w, h = frame.width, frame.height
        lm = self._models.landmarks(frame.rgb())
        pose = pose_from_landmarks(lm, w, h) if lm is not None else None
        faces = self._count_faces(frame)
        # drawn from the pose alone: not one camera pixel reaches the output. Drawn at half
        # size and scaled up: anti-aliased ellipses cost ~4x more at full size, and the
        # drawing has no detail that the upscale loses
        if w >= 320 and h >= 240:
            small = draw_avatar(w // 2, h // 2, pose)
            avatar = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            avatar = draw_avatar(w, h, pose)
        out = cv2.cvtColor(avatar, cv2.COLOR_RGB2YUV_I420)
        return TransformResult(out, faces)

    def warm(self) -> None:
        """Set the models up before the first frame (see Models.warm)."""
        self._models.warm()

    def close(self) -> None:
        """Release the models (safe twice)."""
        self._models.close()


def _same_face(a: PixelBox, b: PixelBox) -> bool:
    """Two detections of one face: their centres lie inside each other's boxes."""
    acx, acy = a[0] + a[2] / 2, a[1] + a[3] / 2
    bcx, bcy = b[0] + b[2] / 2, b[1] + b[3] / 2
    return abs(acx - bcx) < min(a[2], b[2]) / 2 and abs(acy - bcy) < min(a[3], b[3]) / 2


def _merged(boxes: list[PixelBox]) -> list[PixelBox]:
    """One box per face: detections of the same face (both models) joined into the box that
    holds them all, so a mask covers wherever either model put the face."""
    out: list[PixelBox] = []
    for box in boxes:
        for k, b in enumerate(out):
            if _same_face(box, b):
                x0, y0 = min(box[0], b[0]), min(box[1], b[1])
                x1 = max(box[0] + box[2], b[0] + b[2])
                y1 = max(box[1] + box[3], b[1] + b[3])
                out[k] = (x0, y0, x1 - x0, y1 - y0)
                break
        else:
            out.append(box)
    return out


def body_zones(tight: list[PixelBox], size: tuple[int, int], small: tuple[int, int]) -> np.ndarray:
    """A uint8 0/255 mask (at `small` = (w, h)) of the bodies the detected faces vouch for."""
    w, h = size
    sw, sh = small
    zones = np.zeros((sh, sw), np.uint8)
    sx, sy = sw / w, sh / h
    for x, y, bw, bh in tight:
        cx = x + bw / 2
        x0 = int((cx - _BODY_HALF_WIDTH * bw) * sx)
        x1 = int((cx + _BODY_HALF_WIDTH * bw) * sx + 0.999)
        y0 = int((y + _BODY_TOP * bh) * sy)
        y1 = int((y + (_BODY_TOP + _BODY_DEPTH) * bh) * sy + 0.999)
        zones[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = 255
    return zones


def _hide_unvouched(
    dst: yuv.Planes, mask_small: np.ndarray, tight: list[PixelBox], size: tuple[int, int]
) -> None:
    """Fill every part of a person that no face detected in this frame vouches for.

    Fail closed per head, not per person region: in a group everyone merges into one region,
    so a region with one face found says nothing about the other heads in it. What is shown
    of a person is only the body under a face found in this very frame; the rest (the upper
    part of every silhouette column without a detection, heads cut by the frame's edge, a
    face turned away, hair and raised hands) is painted over. The faces themselves are
    masked afterwards.
    """
    sh, sw = mask_small.shape
    if not mask_small.any():
        return
    hidden = mask_small
    if tight:
        zones = body_zones(tight, size, (sw, sh))
        hidden = cv2.bitwise_and(mask_small, cv2.bitwise_not(zones))
        if not hidden.any():
            return
    # grown a little so the silhouette's edge does not show a sliver of the person
    grown = cv2.dilate(hidden, np.ones((9, 9), np.uint8))
    yuv.fill_masked(dst, grown, _SILHOUETTE_RGB)
