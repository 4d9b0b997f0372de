"""Frame conversion and the size policy (cap, minimum) for privacy transforms."""

from __future__ import annotations

import av
import cv2
import numpy as np

# frames larger than this are downscaled (keeping aspect) before any transform: bounds CPU
MAX_WIDTH = 1920
MAX_HEIGHT = 1080
# frames smaller than this on either side carry nothing a transform can work on: they get a
# placeholder of PLACEHOLDER_SIZE instead (a card cannot be drawn legibly at 1x1)
MIN_SIDE = 16
PLACEHOLDER_SIZE = (160, 120)


def fit_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """width x height scaled down, aspect kept, to fit max_width x max_height (unchanged if it
    fits already; never scaled up)."""
    if width <= max_width and height <= max_height:
        return width, height
    scale = min(max_width / width, max_height / height)
    # even sizes after a downscale, so the encoder gets whole chroma blocks
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def output_size(width: int, height: int) -> tuple[int, int]:
    """The output size for an input of width x height (see the module constants)."""
    if width < MIN_SIDE or height < MIN_SIDE:
        return PLACEHOLDER_SIZE
    return fit_size(width, height, MAX_WIDTH, MAX_HEIGHT)


def frame_to_rgb(frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    """The frame as an HxWx3 uint8 RGB array at `size` (width, height)."""
    if (frame.width, frame.height) == size:
        return frame.to_ndarray(format="rgb24")
    return frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray()


def frame_to_i420(frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    """The frame as a C-contiguous I420 array ((H*3/2) x W uint8) at `size`; even sizes only."""
    if frame.format.name != "yuv420p" or (frame.width, frame.height) != size:
        frame = frame.reformat(width=size[0], height=size[1], format="yuv420p")
    # a decoded frame is already yuv420p: this is one copy of its planes, no colour conversion
    return np.ascontiguousarray(frame.to_ndarray())


def i420_to_frame(i420: np.ndarray) -> av.VideoFrame:
    """A new yuv420p frame from an I420 array."""
    return av.VideoFrame.from_ndarray(i420, format="yuv420p")


def rgb_to_frame(rgb: np.ndarray) -> av.VideoFrame:
    """A new yuv420p frame from an RGB array."""
    h, w = rgb.shape[:2]
    if w % 2 == 0 and h % 2 == 0:
        # cv2's I420 conversion is several times faster than swscale from rgb24
        yuv = np.asarray(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420), np.uint8)
        return av.VideoFrame.from_ndarray(yuv, format="yuv420p")
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
        format="yuv420p"
    )


def stamp(out: av.VideoFrame, src: av.VideoFrame) -> av.VideoFrame:
    """Copy timing from the source frame onto the output frame."""
    out.pts = src.pts
    if src.time_base is not None:
        out.time_base = src.time_base
    return out
