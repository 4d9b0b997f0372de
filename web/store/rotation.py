"""Data key rotation: every encrypted value re-encrypted under a new key, resumable.

1. A new key goes to the front of the key file; the old ones stay (the service, which
   re-reads the file when it changes, writes new values with the new key from then on).
2. Values still under an older key are re-encrypted in small transactions. Each update is
   conditional on the value being unchanged, so a name edited meanwhile is never overwritten.
3. Once no value is under an older key, the older keys leave the file.

A rotation stopped at any point (a crash, a kill, a database outage) is resumed by running it
again: a key file that still holds older keys means "finish the rotation", not "start another".
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_, select, update

from . import arrivals, audit, feedback, measures
from .crypto import key_id_of
from .db import Store, Tx
from .keyring import Keyring, read_key_file, write_key_file
from .models import ArrivalCheck, MeasureResponse, Member, SessionFeedback

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncryptedField:
    """A column holding values encrypted with the field cipher, and each value's context."""

    model: Any
    column: str
    context: Callable[[Any], str]


# every encrypted column of the schema (a test holds every `*_enc` column to this list, so a
# new one cannot be left under a retired key); each context is the one its writer binds in
ENCRYPTED_FIELDS: tuple[EncryptedField, ...] = (
    EncryptedField(Member, "real_name_enc", lambda row: f"member:{row.id}:real_name"),
    EncryptedField(Member, "contact_enc", lambda row: f"member:{row.id}:contact"),
    EncryptedField(Member, "emergency_contact_enc",
                   lambda row: f"member:{row.id}:emergency_contact"),
    EncryptedField(MeasureResponse, "result_enc", lambda row: measures.field_context(row.id)),
    EncryptedField(ArrivalCheck, "location_enc", lambda row: arrivals.field_context(row.id)),
    EncryptedField(SessionFeedback, "answers_enc", lambda row: feedback.field_context(row.id)),
)


@dataclass(frozen=True)
class RotationReport:
    primary: str
    retired: list[str]
    rewrapped: int
    resumed: bool
    values: int


def values_by_key(tx: Tx) -> Counter[str]:
    """How many stored values each key id encrypts."""
    counts: Counter[str] = Counter()
    for field in ENCRYPTED_FIELDS:
        col = getattr(field.model, field.column)
        for stored in tx.db.scalars(select(col).where(col.is_not(None))):
            counts[key_id_of(stored) or "unknown"] += 1
    return counts


def rewrap_batch(tx: Tx, batch_size: int) -> int:
    """Re-encrypt up to `batch_size` values that are not under the primary key."""
    primary = tx.cipher.keyring.primary
    done = 0
    for field in ENCRYPTED_FIELDS:
        col = getattr(field.model, field.column)
        rows = tx.db.execute(
            select(field.model.id, col)
            .where(col.is_not(None), ~col.startswith(primary + ":"))
            .order_by(field.model.id)
            .limit(batch_size - done)
        ).all()
        for row_id, stored in rows:
            context = field.context(_Row(row_id))
            fresh = tx.cipher.encrypt(tx.cipher.decrypt(stored, context=context),
                                      context=context)
            # only if nobody changed it meanwhile (it is then under the new key already)
            tx.db.execute(
                update(field.model)
                .where(and_(field.model.id == row_id, col == stored))
                .values({field.column: fresh})
            )
            done += 1
        if done >= batch_size:
            break
    return done


@dataclass(frozen=True)
class _Row:
    id: str


def rotate_data_key(
    store: Store,
    key_file: Path,
    *,
    batch_size: int = 100,
    actor: str = "cli",
    on_batch: Callable[[int], None] | None = None,
) -> RotationReport:
    """Rotate (or finish rotating) the data key in `key_file`; `store` must read that file."""
    ring = read_key_file(key_file)
    resumed = bool(ring.retired)
    if not resumed:
        ring = ring.with_new_primary()
        write_key_file(key_file, ring)
        logger.info("data key rotation: new key %s written", ring.primary)
    if store.cipher.keyring.primary != ring.primary:
        raise RuntimeError("the store does not read the key file being rotated")
    rewrapped = 0
    while True:
        n = store.call(rewrap_batch, batch_size)
        rewrapped += n
        if on_batch is not None:
            on_batch(n)
        if n == 0:
            break
    counts = store.call(values_by_key)
    left = {k: n for k, n in counts.items() if k != ring.primary}
    if left:
        # a value under no key of the ring would be lost with the old keys: stop here
        raise RuntimeError(f"values remain under other keys: {sorted(left)}")
    final: Keyring = ring.only_primary()
    write_key_file(key_file, final)
    report = RotationReport(ring.primary, ring.retired, rewrapped, resumed,
                            counts.get(ring.primary, 0))
    store.call(audit.append, actor, "data_key.rotated", ring.primary,
               {"retired": report.retired, "rewrapped": rewrapped, "values": report.values,
                "resumed": resumed})
    return report
