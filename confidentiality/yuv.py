"""I420 (yuv420p) images as numpy planes: views, flat colours, small RGB, background blur."""

from __future__ import annotations

import functools

import cv2
import numpy as np

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]  # Y (h x w), U, V (h/2 x w/2)

# the background blur: each plane is area-downscaled to 1/8, blurred with this sigma and
# scaled back up (~sigma 20 px at full size): faces and text in the background become
# unreadable, at a fraction of the cost of blurring a full-size RGB image
_BLUR_DIVISOR = 8
_BLUR_SIGMA = 2.5


def i420_size(i420: np.ndarray) -> tuple[int, int]:
    """(width, height) of an I420 array of shape (height * 3 / 2, width)."""
    rows, width = i420.shape
    return width, rows * 2 // 3


def planes(i420: np.ndarray) -> Planes:
    """Y, U and V views into a C-contiguous I420 array (writing to them writes the array)."""
    if i420.ndim != 2 or i420.dtype != np.uint8 or not i420.flags.c_contiguous:
        raise ValueError("an I420 image is a C-contiguous 2-D uint8 array")
    width, height = i420_size(i420)
    if width % 2 or height % 2 or i420.shape[0] * 2 % 3:
        raise ValueError(f"I420 needs even sizes, got {width}x{height}")
    cw, ch = width // 2, height // 2
    # plane boundaries need not fall on row boundaries (height not a multiple of 4): slice flat
    flat = i420.reshape(-1)
    y_end = width * height
    u_end = y_end + cw * ch
    return (
        flat[:y_end].reshape(height, width),
        flat[y_end:u_end].reshape(ch, cw),
        flat[u_end:].reshape(ch, cw),
    )


@functools.lru_cache(maxsize=32)
def yuv_colour(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The Y, U, V values of an RGB colour, as OpenCV's I420 conversion gives them."""
    patch = np.empty((2, 2, 3), np.uint8)
    patch[:] = rgb
    yuv = cv2.cvtColor(patch, cv2.COLOR_RGB2YUV_I420).reshape(-1)
    return int(yuv[0]), int(yuv[4]), int(yuv[5])


def small_rgb(i420: np.ndarray, width: int) -> np.ndarray:
    """An RGB image at most `width` wide (keeping aspect), converting only the small image."""
    w, h = i420_size(i420)
    if w <= width:
        return cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)
    sw = width // 2 * 2
    sh = max(2, round(h * sw / w) // 2 * 2)
    y, u, v = planes(i420)
    small = np.empty((sh * 3 // 2, sw), np.uint8)
    sy, su, sv = planes(small)
    cv2.resize(y, (sw, sh), dst=sy, interpolation=cv2.INTER_AREA)
    cv2.resize(u, (sw // 2, sh // 2), dst=su, interpolation=cv2.INTER_AREA)
    cv2.resize(v, (sw // 2, sh // 2), dst=sv, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_YUV2RGB_I420)


def crop_rgb(
    i420: np.ndarray, box: tuple[int, int, int, int], max_side: int
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The RGB image of `box` (x, y, w, h) at most `max_side` on its longer side, converting
    only the crop; and the box actually cut (clipped to the frame, on even pixels)."""
    width, height = i420_size(i420)
    x, y, w, h = box
    x0, y0 = max(0, x) // 2 * 2, max(0, y) // 2 * 2
    x1 = min(width, (x + w + 1) // 2 * 2)
    y1 = min(height, (y + h + 1) // 2 * 2)
    cw, ch = max(2, x1 - x0), max(2, y1 - y0)
    scale = min(1.0, max_side / max(cw, ch))
    sw, sh = max(2, round(cw * scale) // 2 * 2), max(2, round(ch * scale) // 2 * 2)
    yp, up, vp = planes(i420)
    small = np.empty((sh * 3 // 2, sw), np.uint8)
    sy, su, sv = planes(small)
    cv2.resize(yp[y0 : y0 + ch, x0 : x0 + cw], (sw, sh), dst=sy, interpolation=cv2.INTER_AREA)
    c = (slice(y0 // 2, (y0 + ch) // 2), slice(x0 // 2, (x0 + cw) // 2))
    cv2.resize(up[c], (sw // 2, sh // 2), dst=su, interpolation=cv2.INTER_AREA)
    cv2.resize(vp[c], (sw // 2, sh // 2), dst=sv, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_YUV2RGB_I420), (x0, y0, cw, ch)


def tiny_luma(y: np.ndarray) -> np.ndarray:
    """The luma plane area-downscaled by the blur divisor (also a cheap motion probe)."""
    h, w = y.shape
    size = (max(1, w // _BLUR_DIVISOR), max(1, h // _BLUR_DIVISOR))
    return cv2.resize(y, size, interpolation=cv2.INTER_AREA)


def blur_planes_into(src: Planes, dst: Planes, tiny_y: np.ndarray | None = None) -> None:
    """Write a strongly blurred copy of each source plane into the matching output plane."""
    for i, (s, d) in enumerate(zip(src, dst, strict=True)):
        h, w = s.shape
        if i == 0 and tiny_y is not None:
            small = tiny_y
        else:
            size = (max(1, w // _BLUR_DIVISOR), max(1, h // _BLUR_DIVISOR))
            small = cv2.resize(s, size, interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), _BLUR_SIGMA)
        cv2.resize(small, (w, h), dst=d, interpolation=cv2.INTER_LINEAR)


def fill_rounded_rect(
    pl: Planes, box: tuple[int, int, int, int], radius: int, rgb: tuple[int, int, int]
) -> None:
    """Paint an opaque rounded rectangle of colour `rgb` on all three planes."""
    x, y, w, h = box
    yv, uv, vv = yuv_colour(rgb)
    _rounded_rect(pl[0], x, y, x + w, y + h, radius, yv)
    # chroma at half size: round outwards so the colour covers at least the luma box
    cx0, cy0, cx1, cy1 = x // 2, y // 2, (x + w + 1) // 2, (y + h + 1) // 2
    _rounded_rect(pl[1], cx0, cy0, cx1, cy1, radius // 2, uv)
    _rounded_rect(pl[2], cx0, cy0, cx1, cy1, radius // 2, vv)


def _rounded_rect(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, r: int, value: int) -> None:
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        return
    r = max(0, min(r, w // 2, h // 2))
    colour = (value,)
    cv2.rectangle(img, (x0 + r, y0), (x1 - 1 - r, y1 - 1), colour, -1)
    cv2.rectangle(img, (x0, y0 + r), (x1 - 1, y1 - 1 - r), colour, -1)
    if r == 0:
        return
    for cx, cy in (
        (x0 + r, y0 + r),
        (x1 - 1 - r, y0 + r),
        (x0 + r, y1 - 1 - r),
        (x1 - 1 - r, y1 - 1 - r),
    ):
        cv2.circle(img, (cx, cy), r, colour, -1)


def fill_masked(pl: Planes, mask: np.ndarray, rgb: tuple[int, int, int]) -> None:
    """Paint colour `rgb` wherever `mask` (any size, non-zero = paint) is set, on all planes."""
    yv, uv, vv = yuv_colour(rgb)
    for plane, value in zip(pl, (yv, uv, vv), strict=True):
        h, w = plane.shape
        m = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        plane[m > 0] = value
