"""Records a live room makes (attendance, agreement answers, incidents, audit, the end), each
kept as a small typed value until the store has it.

A record holds ids and codes only, never a name, and keeps the time it happened: written
after a database outage, it still says when it happened.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import exc as sa_exc

from web.store import Tx, accounts, audit, safety, sessions
from web.store.errors import StoreError, StoreUnavailable

logger = logging.getLogger(__name__)

RecordKind = Literal["join", "leave", "checklist", "incident", "audit", "session_ended"]
KINDS: frozenset[str] = frozenset(get_args(RecordKind))

# What a full queue gives up first (lowest first): the audit line of each command is the most
# numerous record and the least needed; incidents and the end of a session go last.
PRIORITY: dict[str, int] = {
    "audit": 0,
    "join": 1,
    "leave": 1,
    "checklist": 2,
    "incident": 3,
    "session_ended": 3,
}


@dataclass(frozen=True)
class PendingRecord:
    """One record waiting for the store."""

    kind: RecordKind
    at: datetime
    session_id: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def priority(self) -> int:
        return PRIORITY[self.kind]

    @property
    def label(self) -> str:
        """What the record is, for counts of what was dropped (ids left out)."""
        if self.kind == "audit":
            return f"audit:{self.fields.get('action', '?')}"
        if self.kind == "incident":
            return f"incident:{self.fields.get('incident', '?')}"
        return self.kind

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "at": self.at.isoformat(),
                           "session_id": self.session_id, "fields": self.fields})

    @classmethod
    def from_json(cls, line: str) -> PendingRecord:
        data = json.loads(line)
        if data.get("kind") not in KINDS:
            raise ValueError("unknown record kind")
        return cls(data["kind"], datetime.fromisoformat(data["at"]), str(data["session_id"]),
                   dict(data.get("fields") or {}))


def write(tx: Tx, record: PendingRecord) -> None:
    """Apply one record in `tx` (whose time is the record's)."""
    sid, f = record.session_id, record.fields
    if record.kind == "join":
        sessions.record_join(tx, sid, f["participant_id"])
    elif record.kind == "leave":
        sessions.record_leave(tx, sid, f["participant_id"])
    elif record.kind == "checklist":
        sessions.record_checklist(tx, sid, f["participant_id"], f["result"])
    elif record.kind == "incident":
        safety.record_incident(tx, sid, f["incident"], f.get("participant_id"), f["detail"])
    elif record.kind == "audit":
        audit.append(tx, f["actor"], f["action"], f["target"], f.get("detail") or {})
    elif record.kind == "session_ended":
        user = accounts.user_by_participant(tx, f["actor"])
        if user is not None and sessions.find_session(tx, sid).status != "ended":
            sessions.transition(tx, user, sid, "ended")


def write_batch(tx: Tx, batch: list[PendingRecord]) -> None:
    """Write records in one transaction, each with its own time.

    A record the store refuses for what it says (not for being unreachable) would be refused
    again on every retry: `RecordsRefused` names those, the transaction is rolled back (a
    refused record may have left half its rows) and the caller writes the others again.
    """
    refused: list[PendingRecord] = []
    for record in batch:
        try:
            write(Tx(tx.db, record.at, tx.cipher), record)
            tx.db.flush()
        except (StoreUnavailable, sa_exc.OperationalError, sa_exc.InterfaceError):
            raise
        except (StoreError, sa_exc.DBAPIError, KeyError, TypeError, ValueError):
            # the transaction may be spoilt for the rest: they go again without this one
            refused.append(record)
            break
    if refused:
        raise RecordsRefused(refused)


class RecordsRefused(Exception):
    """Records the store will never take as they are."""

    def __init__(self, records: list[PendingRecord]) -> None:
        super().__init__(f"{len(records)} records refused")
        self.records = records
