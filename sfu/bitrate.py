"""How many bits per second each encode-once stream gets, from the size of the room.

Every subscriber receives one video stream per other publisher, so the room's size sets
their downlink: twelve people at 600 kbps each would ask 6.6 Mbps of every member's home
broadband or phone. Real SFUs answer with simulcast layers chosen per tile; an encode-once
server has one stream per publisher, so it shares a per-subscriber downlink budget among the
streams instead. Tiles in a large gallery are small, and a blurred background costs few bits,
so the lower rate loses little; it also means fewer packets to encrypt and send per frame,
which is the server's largest per-subscriber cost.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BitratePolicy:
    # what one subscriber's downlink should carry for the whole gallery
    downlink_budget_bps: int = 4_000_000
    # a single 640x480 15 fps stream: no more than this (a small room: 600 kbps each)
    max_stream_bps: int = 600_000
    # and no less: below ~300 kbps VP8 at 640x480 visibly smears faces in motion
    min_stream_bps: int = 300_000

    def stream_bps(self, video_publishers: int) -> int:
        """Target bitrate of each processed stream when `video_publishers` publish video."""
        others = max(1, video_publishers - 1)
        share = self.downlink_budget_bps // others
        return max(self.min_stream_bps, min(self.max_stream_bps, share))
