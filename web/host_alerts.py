"""Private alerts to a room's hosts: sent at once to the hosts present, kept for a host who is
away, and (for a member who dropped out) carrying the details a clinician needs to reach them.

Alerts go to hosts only. They name a member by pseudonym, never by real name; the details
(contact, emergency contact, where the member said they are today) come from the control
plane's store for this one alert and are not kept here.

Alerts held for the next host survive a restart: the room's live state in the store keeps
them (`held()`, `restore()`), without their details, which are read again from the store
when a host arrives to receive them.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sfu.room import Room

logger = logging.getLogger(__name__)

ALERT_TEXT: dict[str, str] = {
    "waiting": "is waiting in the lobby",
    "hand_raised": "raised their hand",
    "someone_came_in": "pressed “someone came in”: their camera and microphone are off",
    "disconnected": "lost their connection",
    "not_returned": "dropped out and has not come back. Contact details and where they said "
                    "they are today are below",
    "late_arrival": "tried to join after the waiting room closed and was told kindly that it "
                    "has closed",
    "risk_indicator": "answered above 0 on PHQ-9 question 9 (thoughts of being better off dead "
                      "or of self-harm). Please assess risk today: see Today's measures",
}
# alerts a host who is away when they happen still needs on coming back
KEPT_FOR_ABSENT_HOST = frozenset({"someone_came_in", "not_returned", "late_arrival",
                                  "risk_indicator"})
MAX_KEPT = 50

# participant id -> details for the clinician (contact, emergency contact, location today)
DetailsSource = Callable[[str], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class HeldAlert:
    """An alert waiting for the next host, as the store keeps it (never its details)."""

    kind: str
    participant_id: str | None
    message: str
    with_details: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "participant_id": self.participant_id,
                "message": self.message, "with_details": self.with_details}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeldAlert:
        """From the store (raises KeyError/TypeError/ValueError on anything else)."""
        pid = data["participant_id"]
        if not isinstance(data["kind"], str) or not isinstance(data["message"], str) or not (
                pid is None or isinstance(pid, str)):
            raise ValueError("not a held alert")
        return cls(data["kind"], pid, data["message"], bool(data.get("with_details", False)))


class HostAlerts:
    """One room's alerts to its hosts."""

    def __init__(self, room: Room) -> None:
        self.room = room
        # set by the wiring when the room belongs to a scheduled session
        self.details: DetailsSource | None = None
        # pseudonyms of everyone who arrived, so that an alert about someone no longer
        # connected still says who it is about
        self.pseudonyms: dict[str, str] = {}
        self._kept: deque[HeldAlert] = deque(maxlen=MAX_KEPT)
        # told when what is held changes, so the room's live state is written (web.live)
        self.on_held_changed: Callable[[], None] = lambda: None

    def held(self) -> list[HeldAlert]:
        """Alerts waiting for the next host, oldest first."""
        return list(self._kept)

    def restore(self, alerts: Iterable[HeldAlert]) -> None:
        """Alerts held before a restart, waiting again for the next host."""
        self._kept.extend(alerts)

    def name_of(self, pid: str | None) -> str:
        if pid is None:
            return "A participant"
        member = self.room.participants.get(pid)
        return member.display_name if member is not None else self.pseudonyms.get(
            pid, "A participant")

    async def send(self, kind: str, about_pid: str | None, recipients: tuple[str, ...],
                   *, with_details: bool = False) -> int:
        """Send one alert to `recipients` (hosts); how many received it. With nobody to tell,
        an alert that matters later is kept for the next host to arrive."""
        text = f"{self.name_of(about_pid)} {ALERT_TEXT.get(kind, kind.replace('_', ' '))}."
        message: dict[str, Any] = {"type": "alert", "kind": kind, "participant_id": about_pid,
                                   "message": text}
        told = 0
        hosts = [h for h in (self.room.participants.get(i) for i in recipients)
                 if h is not None and h.is_host]
        if not hosts:
            if kind in KEPT_FOR_ABSENT_HOST:
                self._kept.append(HeldAlert(kind, about_pid, text, with_details))
                self.on_held_changed()
            return 0
        if with_details:
            await self._add_details(message, about_pid)
        for host in hosts:
            host.send(dict(message))
            told += 1
        return told

    async def _add_details(self, message: dict[str, Any], about_pid: str | None) -> None:
        if about_pid is None or self.details is None:
            return
        try:
            found = await self.details(about_pid)
        except Exception:
            # the alert itself must still go out; the host has the roster to hand
            logger.exception("could not read a member's safeguarding details")
            found = None
        if found is not None:
            message["details"] = found

    async def host_arrived(self, host_id: str) -> None:
        """A host arrived: give them what happened while no host was there."""
        host = self.room.participants.get(host_id)
        if host is None or not host.is_host or not self._kept:
            return
        while self._kept:
            held = self._kept.popleft()
            message: dict[str, Any] = {"type": "alert", "kind": held.kind,
                                       "participant_id": held.participant_id,
                                       "message": held.message}
            if held.with_details:
                await self._add_details(message, held.participant_id)
            host.send(message)
        self.on_held_changed()
