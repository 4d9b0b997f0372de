"""The session recorder: each record is queued for the store and the room carries on."""

from __future__ import annotations

import logging
from typing import Any

from web.store import Store, sessions
from web.store.errors import StoreError

from .writer import DurableWriter

logger = logging.getLogger(__name__)


class QueuedRecorder:
    """Records a session's events (ids only, never names) without waiting for the store."""

    def __init__(self, writer: DurableWriter, session_id: str, store: Store) -> None:
        self.writer = writer
        self.session_id = session_id
        self.store = store

    async def session_status(self) -> str | None:
        """The session's status in the store, or None when it cannot be read now."""
        if not self.writer.database_available:
            # the database is away: a reconnect does not wait for it; the room goes on by
            # what it knows (an end made through the API reaches the room directly)
            return None
        try:
            return (await self.store.run(sessions.find_session, self.session_id)).status
        except StoreError:
            logger.warning("could not read the status of a session")
            return None

    async def joined(self, participant_id: str) -> None:
        self.writer.record("join", self.session_id, participant_id=participant_id)

    async def left(self, participant_id: str) -> None:
        if self.writer.frozen:
            # the service is stopping: a socket closing now is not the member leaving
            return
        self.writer.record("leave", self.session_id, participant_id=participant_id)

    async def checklist(self, participant_id: str, result: dict[str, Any]) -> None:
        self.writer.record("checklist", self.session_id, participant_id=participant_id,
                           result=result)

    async def incident(self, kind: str, participant_id: str | None, detail: str) -> None:
        self.writer.record("incident", self.session_id, incident=kind,
                           participant_id=participant_id, detail=detail)

    async def audit(self, actor: str, action: str, target: str | None, detail: str) -> None:
        self.writer.record("audit", self.session_id, actor=actor, action=action,
                           target=target or self.session_id,
                           detail={"session": self.session_id, "result": detail})

    async def session_ended(self, actor: str) -> None:
        self.writer.record("session_ended", self.session_id, actor=actor)
