"""Neutral cards shown instead of camera pixels (camera off, fail-closed)."""

from __future__ import annotations

import functools

import av
import cv2
import numpy as np

PAUSED_REASON = "video paused for privacy"
CAMERA_OFF_REASON = "camera off"

_BACKGROUND_RGB = (58, 66, 78)  # calm slate
_TEXT_RGB = (232, 236, 240)
_SUBTLE_RGB = (170, 180, 192)


def _fit_text(text: str, max_width_px: int, base_scale: float, thickness: int) -> float:
    (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, base_scale, thickness)
    return base_scale if tw <= max_width_px else base_scale * max_width_px / max(tw, 1)


def _ascii(text: str) -> str:
    # Hershey fonts draw ASCII only; keep the pseudonym readable rather than as '?'
    return text.encode("ascii", "replace").decode("ascii")[:40]


@functools.lru_cache(maxsize=16)
def placeholder_rgb(width: int, height: int, display_name: str, reason: str) -> np.ndarray:
    """A read-only RGB card with the display name and a short reason; no source pixels."""
    if width < 1 or height < 1:
        raise ValueError(f"placeholder size must be positive, got {width}x{height}")
    card = np.empty((height, width, 3), np.uint8)
    card[:] = _BACKGROUND_RGB
    if min(width, height) >= 48:
        name = _ascii(display_name) or "participant"
        unit = min(width, height) / 480.0
        # a simple head-and-shoulders glyph, so the card reads as "a person is here"
        cx, cy = width // 2, int(height * 0.36)
        r = max(4, int(46 * unit))
        cv2.circle(card, (cx, cy), r, _SUBTLE_RGB, -1, cv2.LINE_AA)
        cv2.ellipse(
            card,
            (cx, cy + int(2.4 * r)),
            (int(1.8 * r), int(1.1 * r)),
            0,
            180,
            360,
            _SUBTLE_RGB,
            -1,
            cv2.LINE_AA,
        )
        thick = max(1, int(2 * unit))
        scale = _fit_text(name, int(width * 0.9), 1.1 * unit, thick)
        (tw, th), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = int(height * 0.70)
        cv2.putText(
            card,
            name,
            ((width - tw) // 2, ty),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            _TEXT_RGB,
            thick,
            cv2.LINE_AA,
        )
        small = _ascii(reason)
        sscale = _fit_text(small, int(width * 0.9), 0.7 * unit, max(1, thick - 1))
        (sw, sh), _ = cv2.getTextSize(small, cv2.FONT_HERSHEY_SIMPLEX, sscale, max(1, thick - 1))
        cv2.putText(
            card,
            small,
            ((width - sw) // 2, ty + th + sh + int(12 * unit)),
            cv2.FONT_HERSHEY_SIMPLEX,
            sscale,
            _SUBTLE_RGB,
            max(1, thick - 1),
            cv2.LINE_AA,
        )
    card.setflags(write=False)
    return card


@functools.lru_cache(maxsize=16)
def _placeholder_i420(width: int, height: int, display_name: str, reason: str) -> np.ndarray:
    card = cv2.cvtColor(
        placeholder_rgb(width, height, display_name, reason), cv2.COLOR_RGB2YUV_I420
    )
    card.setflags(write=False)
    return card


def placeholder_frame(width: int, height: int, display_name: str, reason: str) -> av.VideoFrame:
    """A yuv420p card frame with the display name and reason (never any camera pixel)."""
    from confidentiality.frames import i420_to_frame, rgb_to_frame

    if width % 2 == 0 and height % 2 == 0:
        # the card converted once, not per frame (camera off sends it every frame)
        return i420_to_frame(_placeholder_i420(width, height, display_name, reason))
    return rgb_to_frame(placeholder_rgb(width, height, display_name, reason))
