"""Bad input never crashes the pipeline and never lets a camera frame through."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
import skimage.data

from confidentiality.frames import MAX_HEIGHT, MAX_WIDTH, PLACEHOLDER_SIZE, output_size
from confidentiality.pipeline import PrivacyPipeline
from tests.support.faces import (
    astronaut_frames,
    face_box_in_source,
    faces_overlapping,
    haar_faces,
    to_video_frame,
    video_frame_rgb,
)

ASTRONAUT = astronaut_frames("static", 1)[0]


def _noise(w: int, h: int) -> np.ndarray:
    return np.random.default_rng(w * 7919 + h).integers(0, 256, (h, w, 3), np.uint8)


@pytest.mark.parametrize(
    "width,height,expected",
    [
        (1, 1, PLACEHOLDER_SIZE),
        (2, 2, PLACEHOLDER_SIZE),
        (15, 200, PLACEHOLDER_SIZE),
        (16, 16, (16, 16)),
        (641, 479, (641, 479)),
        (4096, 2160, (MAX_WIDTH, 1012)),
        (1080, 1920, (606, MAX_HEIGHT)),
    ],
)
def test_sizes(
    face_mask_pipeline: PrivacyPipeline, width: int, height: int, expected: tuple[int, int]
) -> None:
    src = to_video_frame(_noise(width, height), 3)
    out = face_mask_pipeline.process(src)
    assert (out.width, out.height) == expected == output_size(width, height)
    assert out.format.name == "yuv420p" and out.pts == src.pts and out.time_base == src.time_base
    if expected == (width, height):
        assert not np.array_equal(video_frame_rgb(out), video_frame_rgb(src))


def test_resolution_change_mid_stream_keeps_faces_covered(
    face_mask_pipeline: PrivacyPipeline,
) -> None:
    i = 10
    for size in [(640, 480), (320, 240), (1280, 720), (640, 480)]:
        for rgb in astronaut_frames("static", 3, size):
            i += 1
            src = to_video_frame(rgb, i)
            out = face_mask_pipeline.process(src)
            assert (out.width, out.height) == size
            expected = face_box_in_source("static", 0, 3, size)
            assert faces_overlapping(haar_faces(video_frame_rgb(src)), expected)
            assert not faces_overlapping(haar_faces(video_frame_rgb(out)), expected, 0.1)


def _lit(scale: float, offset: float = 0.0) -> np.ndarray:
    return np.clip(ASTRONAUT.astype(np.float32) * scale + offset, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "name,rgb",
    [
        ("black", np.zeros((480, 640, 3), np.uint8)),
        ("very dark", _lit(0.06)),
        ("overexposed", _lit(2.5, 60)),
        ("no person", cv2.resize(skimage.data.coffee(), (640, 480))),
        ("several people", astronaut_frames("two_faces", 1)[0]),
    ],
)
def test_hard_content(face_mask_pipeline: PrivacyPipeline, name: str, rgb: np.ndarray) -> None:
    for i in range(3):
        src = to_video_frame(rgb, 100 + i)
        out = face_mask_pipeline.process(src)
        assert isinstance(out, av.VideoFrame) and (out.width, out.height) == (640, 480)
        src_rgb, out_rgb = video_frame_rgb(src), video_frame_rgb(out)
        if src_rgb.std() > 1:  # a flat black frame stays black whatever is done to it
            assert not np.array_equal(out_rgb, src_rgb), name
        expected = face_box_in_source("two_faces" if name == "several people" else "static", 0, 1)
        assert not faces_overlapping(haar_faces(out_rgb), expected, 0.1), name
