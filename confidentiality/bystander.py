"""Bystander detection: more than one face in a participant's camera for a while."""

from __future__ import annotations

from typing import Literal

BystanderChange = Literal["bystander", "bystander_cleared"]


class BystanderMonitor:
    """Turns per-frame face counts into rate-limited bystander / cleared changes."""

    def __init__(
        self,
        *,
        # two faces counted over this long raise the alert: long enough that one stray
        # detection (a face on a poster in one frame) does not, short enough that with counts
        # every quarter second the host hears within 2 s of a second face appearing
        after_s: float = 0.8,
        clear_after_s: float = 2.0,
        min_interval_s: float = 30.0,
        gap_tolerance_s: float = 1.0,
    ) -> None:
        self._after_s = after_s
        self._clear_after_s = clear_after_s
        self._min_interval_s = min_interval_s
        # a missed detection does not restart the clock; longer than the ~0.5 s between counts
        self._gap_s = gap_tolerance_s
        self._many_since: float | None = None
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
            if self._many_since is None or (
                self._many_last is not None and t_s - self._many_last > self._gap_s
            ):
                self._many_since = t_s
                self._max_faces = 0
            self._many_last = t_s
            self._max_faces = max(self._max_faces, faces)
            long_enough = t_s - self._many_since >= self._after_s
            rested = self._last_alert_s is None or t_s - self._last_alert_s >= self._min_interval_s
            if long_enough and not self._alerted and rested:
                self._alerted = True
                self._last_alert_s = t_s
                return "bystander"
            return None
        if self._many_last is not None and t_s - self._many_last > self._gap_s:
            self._many_since = None
        if self._alerted and (
            self._many_last is None or t_s - self._many_last >= self._clear_after_s
        ):
            self._alerted = False
            return "bystander_cleared"
        return None
