"""Profile changes apply from the very next frame, and no raw frame slips through after."""

from __future__ import annotations

import numpy as np
from conftest import EventLog, make_pipeline

from confidentiality.placeholder import CAMERA_OFF_REASON, placeholder_frame
from confidentiality.profiles import Profile
from tests.support.faces import (
    astronaut_frames,
    face_box_in_source,
    faces_overlapping,
    haar_faces,
    to_video_frame,
    video_frame_rgb,
)

N = 24


def test_switch_to_none_and_back(events: EventLog) -> None:
    frames = astronaut_frames("pan", N)
    pipeline = make_pipeline(Profile.FACE_MASK, events)
    for i, rgb in enumerate(frames):
        src = to_video_frame(rgb, i)
        if i == 8:
            pipeline.set_profile(Profile.NONE)
        if i == 12:
            pipeline.set_profile(Profile.FACE_MASK)
        out = pipeline.process(src)
        expected = face_box_in_source("pan", i, N)
        if 8 <= i < 12:
            assert out is src  # none: the frame untouched
            assert pipeline.profile is Profile.NONE
        else:
            # from the very first frame after switching back: masked, never the source
            assert out is not src
            out_rgb, src_rgb = video_frame_rgb(out), video_frame_rgb(src)
            assert not np.array_equal(out_rgb, src_rgb)
            assert faces_overlapping(haar_faces(src_rgb), expected)
            assert not faces_overlapping(haar_faces(out_rgb), expected, 0.1), f"frame {i}"
    pipeline.close()
    assert "fail_closed" not in events.kinds()


def test_switch_to_camera_off_and_avatar_applies_next_frame() -> None:
    frames = astronaut_frames("static", 4)
    pipeline = make_pipeline(Profile.BLUR)
    first = video_frame_rgb(pipeline.process(to_video_frame(frames[0], 0)))
    pipeline.set_profile(Profile.CAMERA_OFF)
    card = video_frame_rgb(pipeline.process(to_video_frame(frames[1], 1)))
    assert np.array_equal(
        card, video_frame_rgb(placeholder_frame(640, 480, "Robin", CAMERA_OFF_REASON))
    )
    pipeline.set_profile(Profile.AVATAR)
    avatar = video_frame_rgb(pipeline.process(to_video_frame(frames[2], 2)))
    pipeline.close()
    for a, b in [(first, card), (card, avatar), (first, avatar)]:
        assert float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) > 10
    # the avatar has no camera pixels: its colours are the avatar's few flat colours
    assert len(np.unique(avatar.reshape(-1, 3)[::7], axis=0)) < 0.05 * avatar.size / 21
