"""Bystander detection: more than one face in a participant's camera for a few counts."""

from __future__ import annotations

from typing import Literal

BystanderChange = Literal["bystander", "bystander_cleared"]


class BystanderMonitor:
    """Turns per-frame face counts into rate-limited bystander / cleared changes."""

    def __init__(
        self,
        *,
        # two faces in this many counts (a miss inside the gap tolerance does not restart
        # them) raise the alert: one stray detection (a face on a poster in one frame) does
        # not, and the alert waits on the detector, not on a clock. face_mask
        # counts every frame (3 counts: 0.2 s at 15 fps), blur and avatar every fourth
        # (0.6 s), so the host hears well within 2 s of a second face being findable
        confirm_counts: int = 3,
        clear_after_s: float = 2.0,
        min_interval_s: float = 30.0,
        gap_tolerance_s: float = 1.0,
    ) -> None:
        self._confirm = max(1, confirm_counts)
        self._clear_after_s = clear_after_s
        self._min_interval_s = min_interval_s
        # a missed detection does not restart the count; longer than the time between counts
        self._gap_s = gap_tolerance_s
        self._many_counts = 0
        self._many_last: float | None = None
        self._alerted = False
        self._last_alert_s: float | None = None
        self._max_faces = 0

    @property
    def alerted(self) -> bool:
        """True between a bystander change and its cleared change."""
        return self._alerted

    @property
    def max_faces(self) -> int:
        """Most faces counted in the current many-faces stretch."""
        return self._max_faces

    def update(self, faces: int, t_s: float) -> BystanderChange | None:
        """Feed one face count at time t_s (seconds); returns a change to report, if any."""
        if faces > 1:
            if self._many_last is None or t_s - self._many_last > self._gap_s:
                self._many_counts = 0
                self._max_faces = 0
            self._many_last = t_s
            self._many_counts += 1
            self._max_faces = max(self._max_faces, faces)
            rested = self._last_alert_s is None or t_s - self._last_alert_s >= self._min_interval_s
            if self._many_counts >= self._confirm and not self._alerted and rested:
                self._alerted = True
                self._last_alert_s = t_s
                return "bystander"
            return None
        if self._many_last is not None and t_s - self._many_last > self._gap_s:
            self._many_counts = 0
        if self._alerted and (
            self._many_last is None or t_s - self._many_last >= self._clear_after_s
        ):
            self._alerted = False
            return "bystander_cleared"
        return None
