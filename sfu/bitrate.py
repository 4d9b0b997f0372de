"""What each encode-once stream is (picture size and bitrate), from the size of the room.

Every subscriber receives one video stream per other publisher, so the room's size sets
their downlink and the tiles' size on their screen: twelve people at 640x480 and 600 kbps
would ask 6.6 Mbps of every member's home broadband or phone, for tiles a quarter that size.
Real SFUs answer with simulcast layers chosen per tile; an encode-once server has one stream
per publisher, so it picks that stream's layer for the room's gallery instead: full size in
a small group, smaller pictures and rates as the gallery fills, within a per-subscriber
downlink budget. A smaller layer is also cheaper for the server at every step (transform,
encode, and fewer packets to encrypt and send per frame: its largest per-subscriber cost).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Layer:
    """The picture and rate of each stream while at most `up_to` people publish video."""

    up_to: int
    max_width: int
    max_height: int
    max_bps: int
    # below this VP8 visibly smears faces in motion at this size
    min_bps: int


# a gallery of up to six is two rows of three: big tiles, the source's 640x480; up to nine is
# a 3x3 grid (tiles ~450 px wide on a laptop); beyond, a 4x3 grid of ~320 px tiles
DEFAULT_LAYERS = (
    Layer(6, 640, 480, 600_000, 300_000),
    Layer(9, 480, 360, 450_000, 225_000),
    Layer(10**6, 320, 240, 250_000, 150_000),
)


@dataclass(frozen=True, slots=True)
class BitratePolicy:
    # what one subscriber's downlink should carry for the whole gallery
    downlink_budget_bps: int = 4_000_000
    layers: tuple[Layer, ...] = field(default=DEFAULT_LAYERS)

    def layer(self, video_publishers: int) -> Layer:
        """The layer for a room where `video_publishers` publish video."""
        for layer in self.layers:
            if video_publishers <= layer.up_to:
                return layer
        return self.layers[-1]

    def stream_bps(self, video_publishers: int) -> int:
        """Target bitrate of each processed stream when `video_publishers` publish video."""
        layer = self.layer(video_publishers)
        share = self.downlink_budget_bps // max(1, video_publishers - 1)
        return max(layer.min_bps, min(layer.max_bps, share))

    def max_size(self, video_publishers: int) -> tuple[int, int]:
        """Largest picture (width, height) of each processed stream; smaller sources stay."""
        layer = self.layer(video_publishers)
        return layer.max_width, layer.max_height
