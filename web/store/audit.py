"""The audit log: append-only. There is deliberately no function that updates or deletes."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from .db import Tx
from .errors import InvalidInput
from .models import AuditEvent

MAX_FIELD = 120


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
        }


def append(
    tx: Tx, actor: str, action: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    """Record one event. `detail` must never hold a real name (only roster views name people,
    and even they record ids, not names)."""
    tx.db.add(
        AuditEvent(
            at=tx.now,
            actor=actor[:80],
            action=action[:64],
            target=target[:MAX_FIELD],
            detail=detail or {},
        )
    )


def _entry(row: AuditEvent) -> AuditEntry:
    return AuditEntry(row.id, row.at, row.actor, row.action, row.target, dict(row.detail))


def list_events(
    tx: Tx, *, limit: int = 100, before_id: int | None = None, action: str | None = None
) -> list[AuditEntry]:
    """Newest first, paged by id."""
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000", code="invalid_limit")
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    return [_entry(row) for row in tx.db.scalars(query)]


def all_events(tx: Tx) -> list[AuditEntry]:
    """Every event, oldest first (small logs and tests; exports page with `events_after`)."""
    return [_entry(r) for r in tx.db.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def last_id(tx: Tx) -> int:
    """The newest event's id (0 when there is none)."""
    return int(tx.db.scalar(select(func.max(AuditEvent.id))) or 0)


def events_after(tx: Tx, after_id: int, *, up_to_id: int, limit: int) -> list[AuditEntry]:
    """Up to `limit` events with after_id < id <= up_to_id, oldest first (one export page)."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.id > after_id, AuditEvent.id <= up_to_id)
        .order_by(AuditEvent.id)
        .limit(limit)
    )
    return [_entry(r) for r in tx.db.scalars(query)]


def _cell(value: str) -> str:
    # a cell starting with = + - @ is a formula to a spreadsheet: neutralise it
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


CSV_HEADER = ["id", "at", "actor", "action", "target", "detail"]


def to_csv(entries: Iterable[AuditEntry], *, header: bool = True) -> str:
    """CSV text of the entries, safe to open in a spreadsheet."""
    import json

    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(CSV_HEADER)
    for e in entries:
        writer.writerow(
            [
                e.id,
                e.at.isoformat(),
                _cell(e.actor),
                _cell(e.action),
                _cell(e.target),
                _cell(json.dumps(e.detail, sort_keys=True, ensure_ascii=False)),
            ]
        )
    return out.getvalue()
