"""The face-video helpers other tests build on: real faces where they are said to be."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from tests.support.faces import (
    astronaut_frames,
    face_box_in_source,
    faces_overlapping,
    haar_faces,
    write_y4m,
)


def test_write_y4m_reads_back_as_the_same_video(tmp_path: Path) -> None:
    frames = astronaut_frames("pan", 4)
    path = write_y4m(tmp_path / "face.y4m", frames, fps=15)
    assert path.read_bytes().startswith(b"YUV4MPEG2 W640 H480 F15:1 Ip A1:1 C420jpeg\n")
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 4
    for src, back in zip(frames, decoded, strict=True):
        assert float(np.abs(src.astype(np.int16) - back.astype(np.int16)).mean()) < 4


def test_haar_finds_the_expected_face_in_the_source_clips() -> None:
    for kind in ("static", "pan", "zoom", "two_faces"):
        frames = astronaut_frames(kind, 5)  # type: ignore[arg-type]
        for i, rgb in enumerate(frames):
            expected = face_box_in_source(kind, i, 5)  # type: ignore[arg-type]
            assert len(faces_overlapping(haar_faces(rgb), expected)) == len(expected), (kind, i)
    # leaving the frame: no face expected and none found there
    middle = astronaut_frames("leave_and_return", 5)[2]
    assert face_box_in_source("leave_and_return", 2, 5) == []
    assert not any(b[1] < 200 and b[2] > 60 for b in haar_faces(middle))
