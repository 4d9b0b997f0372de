"""When the host hears that a member's privacy filter could not run: once an episode, if real.

The media path fails closed on every frame it cannot process, whatever the cause: the group
sees a placeholder at once, and that never waits on this module. What waits is the host's
alert. A filter that misses its deadline for a moment (the models warming up in a member's
first second, a busy node) is back a few frames later, and alerting each time taught hosts
to ignore the alert: three in a second for one member, in a three-person room. So:

- a failure that is not a matter of time (the transform raised, the models failed to load,
  the worker died) alerts at once;
- missed deadlines alert only once the member's video has been paused for `LASTING_S` in
  all within the episode;
- one alert per member per episode, with the number of interruptions so far; the episode
  ends once the video has run `QUIET_S` without one, and the next failure starts another.
"""

from __future__ import annotations

from dataclasses import dataclass

# paused this long in all (missed deadlines only) and the host is told
LASTING_S = 2.0
# this long without a failure ends an episode
QUIET_S = 30.0


@dataclass(frozen=True)
class FallbackAlert:
    """Tell the host: this member's video is paused, `interruptions` times this episode."""

    participant_id: str
    interruptions: int


@dataclass
class _Episode:
    interruptions: int = 0
    paused_s: float = 0.0  # paused time before the current pause
    paused_since: float | None = None
    recovered_at: float | None = None
    real: bool = False
    alerted: bool = False

    def paused_total(self, now: float) -> float:
        current = now - self.paused_since if self.paused_since is not None else 0.0
        return self.paused_s + current


class FallbackAlerts:
    """Per-member episodes of a paused video; `now` is any monotonic clock in seconds."""

    def __init__(self, *, lasting_s: float = LASTING_S, quiet_s: float = QUIET_S) -> None:
        self._lasting_s = lasting_s
        self._quiet_s = quiet_s
        self._episodes: dict[str, _Episode] = {}

    def failed(self, participant_id: str, now: float, *, late: bool) -> FallbackAlert | None:
        """The member's video went to a placeholder; `late`: only a deadline was missed.
        Returns the alert to send now, if any."""
        episode = self._episodes.get(participant_id)
        if episode is None or self._ended(episode, now):
            episode = self._episodes[participant_id] = _Episode()
        if episode.paused_since is None:
            episode.paused_since = now
            episode.interruptions += 1
        episode.recovered_at = None
        if not late:
            episode.real = True
        return self._check(participant_id, episode, now)

    def recovered(self, participant_id: str, now: float) -> None:
        """The member's processed video is back."""
        episode = self._episodes.get(participant_id)
        if episode is None or episode.paused_since is None:
            return
        episode.paused_s += now - episode.paused_since
        episode.paused_since = None
        episode.recovered_at = now

    def due(self, now: float) -> list[FallbackAlert]:
        """Alerts that have become due since the last call (pauses that lasted)."""
        alerts = []
        for participant_id, episode in list(self._episodes.items()):
            if self._ended(episode, now):
                del self._episodes[participant_id]
                continue
            alert = self._check(participant_id, episode, now)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def next_due(self, now: float) -> float | None:
        """When `due` may next have an alert: the soonest an ongoing pause lasts long enough."""
        times = [now + self._lasting_s - e.paused_total(now) for e in self._episodes.values()
                 if not e.alerted and e.paused_since is not None]
        return min(times, default=None)

    def forget(self, participant_id: str) -> None:
        """The member left: nothing more to say about them."""
        self._episodes.pop(participant_id, None)

    def _ended(self, episode: _Episode, now: float) -> bool:
        return episode.recovered_at is not None and now - episode.recovered_at >= self._quiet_s

    def _check(self, participant_id: str, episode: _Episode, now: float
               ) -> FallbackAlert | None:
        if episode.alerted:
            return None
        if episode.real or episode.paused_total(now) >= self._lasting_s:
            episode.alerted = True
            return FallbackAlert(participant_id, episode.interruptions)
        return None
