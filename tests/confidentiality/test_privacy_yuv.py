"""The I420 plane helpers the transforms work on, and the segmentation reuse rule."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from confidentiality import yuv
from confidentiality.profiles import Profile
from confidentiality.transforms import MediaPipeTransform
from tests.support.faces import astronaut_frames


def _i420(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)


@pytest.mark.parametrize("size", [(640, 480), (16, 18), (322, 94)])
def test_planes_are_views_matching_opencv_layout(size: tuple[int, int]) -> None:
    w, h = size
    rgb = np.random.default_rng(w + h).integers(0, 256, (h, w, 3), np.uint8)
    i420 = _i420(rgb)
    y, u, v = yuv.planes(i420)
    assert y.shape == (h, w) and u.shape == v.shape == (h // 2, w // 2)
    assert all(np.shares_memory(p, i420) for p in (y, u, v))
    # a flat colour written through the views decodes back to that colour everywhere
    colour = (200, 40, 90)
    yv, uv, vv = yuv.yuv_colour(colour)
    y[:], u[:], v[:] = yv, uv, vv
    back = cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)
    assert np.abs(back.astype(int) - colour).max() <= 3


def test_planes_refuse_odd_sizes_and_copies() -> None:
    with pytest.raises(ValueError, match="even"):
        yuv.planes(np.zeros((15, 9), np.uint8))
    with pytest.raises(ValueError, match="contiguous"):
        yuv.planes(np.zeros((24, 32), np.uint8)[:, ::2])


def test_rounded_rect_covers_the_whole_box_in_every_plane() -> None:
    i420 = _i420(np.full((48, 64, 3), 250, np.uint8))
    pl = yuv.planes(i420)
    box = (13, 7, 21, 17)  # odd corners: chroma must round outwards
    yuv.fill_rounded_rect(pl, box, 0, (10, 20, 30))
    back = cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)
    x, y, w, h = box
    assert np.abs(back[y : y + h, x : x + w].astype(int) - (10, 20, 30)).max() <= 4


def test_small_rgb_matches_a_full_conversion_scaled_down() -> None:
    rgb = astronaut_frames("static", 1)[0]
    small = yuv.small_rgb(_i420(rgb), 320)
    assert small.shape == (240, 320, 3)
    ref = cv2.resize(rgb, (320, 240), interpolation=cv2.INTER_AREA)
    assert float(np.abs(small.astype(int) - ref).mean()) < 3


def test_segmentation_is_reused_only_while_the_picture_is_still() -> None:
    transform = MediaPipeTransform()
    calls = 0
    segment = transform._models.person_mask  # noqa: SLF001 - counting the real model's calls

    def counted(rgb: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        return segment(rgb)

    transform._models.person_mask = counted  # type: ignore[method-assign]  # noqa: SLF001
    try:
        for i, frame in enumerate(astronaut_frames("static", 8)):
            transform.apply_i420(_i420(frame), Profile.BLUR, i / 15)
        still = calls
        calls = 0
        for i, frame in enumerate(astronaut_frames("pan", 8)):
            transform.apply_i420(_i420(frame), Profile.BLUR, 1 + i / 15)
        moving = calls
    finally:
        transform.close()
    assert still == 3  # every third frame
    assert moving == 8  # a moving picture is segmented afresh in every frame
