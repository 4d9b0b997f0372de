"""Process-wide media counters: packets forwarded and dropped, worker restarts, placeholder
frames and transform times. Plain numbers, no ids: what the metrics endpoint aggregates.

Worker processes count into their own copy and send the increments to the server process
(`MediaStats.drain`/`merge`, see sfu/workers.py), so the server's copy is the whole node's.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from typing import Any

# transform time buckets, milliseconds (a frame at 15 fps has 66 ms)
TRANSFORM_BUCKETS_MS: tuple[float, ...] = (1, 2, 5, 10, 20, 33, 50, 66, 100, 200, 500)


@dataclass
class Histogram:
    """Counts per upper bound (the last slot is +Inf) and the sum of what was observed."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)


class MediaStats:
    """Counters of one process; safe to bump from worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.packets_forwarded = {"audio": 0, "video": 0}
        self.bytes_forwarded = {"audio": 0, "video": 0}
        self.packets_dropped = {"audio": 0, "video": 0}
        self.bytes_dropped = {"audio": 0, "video": 0}
        self.worker_restarts = 0
        # subscribers switched to audio first because their downlink was too weak for video
        self.audio_first = 0
        # processed publications whose worker made nothing for a while (starved of CPU)
        self.stalls = 0
        self.placeholder_frames = 0
        self.transform_ms = Histogram(TRANSFORM_BUCKETS_MS)

    def forwarded(self, kind: str, size: int) -> None:
        """One packet handed to a subscriber's sender."""
        if kind in self.packets_forwarded:
            self.packets_forwarded[kind] += 1
            self.bytes_forwarded[kind] += size

    def dropped(self, kind: str, packets: int, size: int) -> None:
        """Packets a subscriber's bounded queue let go (backlog, waiting for a keyframe)."""
        if kind in self.packets_dropped and packets > 0:
            self.packets_dropped[kind] += packets
            self.bytes_dropped[kind] += size

    def switched_to_audio_first(self) -> None:
        """The server paused others' video to one subscriber on a weak downlink."""
        self.audio_first += 1

    def stalled(self) -> None:
        """A processed publication's worker made nothing while its source kept sending."""
        self.stalls += 1

    def worker_restarted(self) -> None:
        self.worker_restarts += 1

    def placeholder(self) -> None:
        with self._lock:
            self.placeholder_frames += 1

    def transformed(self, ms: float) -> None:
        with self._lock:
            self.transform_ms.observe(ms)

    def drain(self) -> dict[str, Any] | None:
        """What a worker process counted since the last drain (None: nothing), reset to zero."""
        with self._lock:
            if not self.placeholder_frames and not self.transform_ms.count:
                return None
            out = {
                "placeholder_frames": self.placeholder_frames,
                "transform_counts": list(self.transform_ms.counts),
                "transform_sum_ms": self.transform_ms.total,
            }
            self.placeholder_frames = 0
            self.transform_ms = Histogram(TRANSFORM_BUCKETS_MS)
        return out

    def merge(self, drained: dict[str, Any]) -> None:
        """Add a worker's drained increments to this (the server's) copy."""
        counts = drained.get("transform_counts")
        with self._lock:
            self.placeholder_frames += int(drained.get("placeholder_frames", 0))
            if isinstance(counts, list) and len(counts) == len(self.transform_ms.counts):
                for i, n in enumerate(counts):
                    self.transform_ms.counts[i] += int(n)
                self.transform_ms.total += float(drained.get("transform_sum_ms", 0.0))


# this process's counters
MEDIA = MediaStats()
