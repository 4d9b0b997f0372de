"""Live session state in the store: what a node needs to take a room over.

A room's rules state (lobby, admitted, removed, the host, holds, floors, flags), the hash of
each participant's reconnect token and the grants already used live here as well as in
memory, so a restarted node, or another node, rebuilds the room exactly. Each room row
carries its owner and a fencing token (`epoch`): taking a room over raises the epoch, and a
write made under an older epoch is refused, so two nodes can never both write one room.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update

from confidentiality.profiles import Profile
from session_rules.lobby import LobbyState
from session_rules.snapshot import ParticipantRecord, SessionRecord

from . import invites
from .db import Tx
from .errors import StoreError
from .models import LiveParticipant, LiveRoom, UsedGrant


class Fenced(StoreError):
    """The room was taken over by another owner (or a later start of this node)."""

    code = "room_fenced"


class StaleToken(Fenced):
    """A fencing token given to take a room over is not above the one the store holds."""

    def __init__(self, message: str, *, stored_epoch: int) -> None:
        super().__init__(message)
        self.stored_epoch = stored_epoch


@dataclass(frozen=True)
class RoomSnapshot:
    """One room's live state as the owner holds it right now."""

    room_id: str
    session_id: str
    session: SessionRecord
    # in arrival order
    participants: Sequence[ParticipantRecord]
    # participant id -> sha256 of their current reconnect token
    resume_hashes: dict[str, str] = field(default_factory=dict)
    alive_at: float = 0.0
    # alerts waiting for the next host (web.host_alerts.HeldAlert, as JSON)
    held_alerts: Sequence[dict[str, Any]] = ()


@dataclass(frozen=True)
class StoredRoom:
    """A room as the store has it."""

    room_id: str
    session_id: str
    node_id: str
    epoch: int
    running: bool
    session: SessionRecord
    participants: list[ParticipantRecord]
    resume_hashes: dict[str, str]
    alive_at: float
    held_alerts: list[dict[str, Any]] = field(default_factory=list)


def _record(row: LiveParticipant) -> ParticipantRecord:
    return ParticipantRecord(
        pid=row.participant_id,
        role="host" if row.role == "host" else "member",
        state=LobbyState(row.state),
        changed_at=row.changed_at_s,
        disconnected_at=row.disconnected_at_s,
        state_before_disconnect=LobbyState(row.state_before_disconnect)
        if row.state_before_disconnect else None,
        profile=Profile(row.profile),
        profile_floor=Profile(row.profile_floor) if row.profile_floor else None,
        audio_muted=row.audio_muted,
        unmute_allowed=row.unmute_allowed,
        hand_raised=row.hand_raised,
        video_stopped=row.video_stopped,
        video_held_by_host=row.video_held_by_host,
        text_only=row.text_only,
        clinician_consent=bool(row.clinician_consent),
    )


def _fill(row: LiveParticipant, rec: ParticipantRecord, seq: int) -> None:
    row.seq = seq
    row.role = rec.role
    row.state = rec.state.value
    row.changed_at_s = rec.changed_at
    row.disconnected_at_s = rec.disconnected_at
    row.state_before_disconnect = (
        rec.state_before_disconnect.value if rec.state_before_disconnect else None
    )
    row.profile = rec.profile.value
    row.profile_floor = rec.profile_floor.value if rec.profile_floor else None
    row.audio_muted = rec.audio_muted
    row.unmute_allowed = rec.unmute_allowed
    row.hand_raised = rec.hand_raised
    row.video_stopped = rec.video_stopped
    row.video_held_by_host = rec.video_held_by_host
    row.text_only = rec.text_only
    row.clinician_consent = rec.clinician_consent


def _stored(tx: Tx, row: LiveRoom) -> StoredRoom:
    people = list(
        tx.db.scalars(
            select(LiveParticipant)
            .where(LiveParticipant.room_id == row.room_id)
            .order_by(LiveParticipant.seq, LiveParticipant.participant_id)
        )
    )
    return StoredRoom(
        room_id=row.room_id,
        session_id=row.session_id,
        node_id=row.node_id,
        epoch=row.epoch,
        running=row.running,
        session=SessionRecord.from_stored(
            row.rules, row.starts_at_s, locked=row.locked, paused=row.paused, ended=row.ended,
            focus=row.focus,
        ),
        participants=[_record(p) for p in people],
        resume_hashes={p.participant_id: p.resume_hash for p in people if p.resume_hash},
        alive_at=row.alive_at_s,
        held_alerts=list(row.held_alerts or []),
    )


def load_room(tx: Tx, room_id: str) -> StoredRoom | None:
    """A room's stored state, or None."""
    row = tx.db.get(LiveRoom, room_id)
    return _stored(tx, row) if row is not None else None


def claim_room(
    tx: Tx, room_id: str, session_id: str, node_id: str, *, fresh: SessionRecord, now: float,
    token: int | None = None,
) -> tuple[int, StoredRoom | None]:
    """Take a room over: this node runs it under a new epoch.

    One node raises the epoch itself; among several, `token` is the fencing token the
    placement granted, and it must be above the stored epoch (else `StaleToken`), so the
    store refuses a takeover by an owner the placement has already moved on from.
    Returns the epoch to write under and what was stored before (None for a new room).
    """
    row = tx.db.get(LiveRoom, room_id, with_for_update=True)
    if row is None:
        tx.db.add(
            LiveRoom(
                room_id=room_id, session_id=session_id, node_id=node_id, epoch=token or 1,
                running=True,
                rules=fresh.rules_dict(), starts_at_s=fresh.starts_at, locked=fresh.locked,
                paused=fresh.paused, ended=fresh.ended, focus=fresh.focus, alive_at_s=now,
            )
        )
        tx.db.flush()
        return token or 1, None
    if token is not None and token <= row.epoch:
        raise StaleToken(f"token {token} is not above epoch {row.epoch}", stored_epoch=row.epoch)
    prior = _stored(tx, row)
    row.epoch = token if token is not None else row.epoch + 1
    row.node_id = node_id
    row.running = True
    row.alive_at_s = now
    return row.epoch, prior


def _owned(tx: Tx, room_id: str, epoch: int) -> LiveRoom:
    row = tx.db.get(LiveRoom, room_id)
    if row is None or row.epoch != epoch:
        raise Fenced(f"room is run under another epoch than {epoch}")
    return row


def save_room(tx: Tx, snap: RoomSnapshot, *, epoch: int) -> None:
    """Write the owner's current state of one room (refused under a stale epoch).

    A participant newly removed has their links for this session revoked in the same
    transaction: the reconnect secret of a removed member never mints a grant again.
    """
    row = _owned(tx, snap.room_id, epoch)
    row.locked, row.paused, row.ended = snap.session.locked, snap.session.paused, snap.session.ended
    row.focus = snap.session.focus
    row.held_alerts = [dict(a) for a in snap.held_alerts]
    row.rules = snap.session.rules_dict()
    row.starts_at_s = snap.session.starts_at
    row.alive_at_s = max(row.alive_at_s, snap.alive_at)
    existing = {
        p.participant_id: p
        for p in tx.db.scalars(
            select(LiveParticipant).where(LiveParticipant.room_id == snap.room_id)
        )
    }
    for seq, rec in enumerate(snap.participants):
        stored = existing.get(rec.pid)
        newly_removed = rec.state is LobbyState.REMOVED and (
            stored is None or stored.state != LobbyState.REMOVED.value
        )
        if stored is None:
            stored = LiveParticipant(room_id=snap.room_id, participant_id=rec.pid)
            tx.db.add(stored)
        _fill(stored, rec, seq)
        # only someone who may come back keeps a reconnect token
        keeps_token = rec.state not in (LobbyState.REMOVED, LobbyState.DECLINED, LobbyState.LEFT)
        stored.resume_hash = snap.resume_hashes.get(rec.pid) if keeps_token else None
        if newly_removed:
            invites.revoke_for_participant(
                tx, snap.session_id, rec.pid, actor=f"room:{snap.room_id}"
            )


def touch_rooms(tx: Tx, owned: Iterable[tuple[str, int, float]]) -> None:
    """Heartbeat: the owner still runs these rooms (room id, epoch, now on its clock)."""
    for room_id, epoch, now in owned:
        tx.db.execute(
            update(LiveRoom)
            .where(LiveRoom.room_id == room_id, LiveRoom.epoch == epoch)
            .values(alive_at_s=now)
            .execution_options(synchronize_session=False)
        )


def close_room(tx: Tx, room_id: str, *, epoch: int, now: float) -> None:
    """The room closed with nobody in it: reopening it later is not a restart."""
    row = _owned(tx, room_id, epoch)
    row.running = False
    row.alive_at_s = now


def running_rooms(tx: Tx, node_id: str | None = None) -> list[tuple[str, str]]:
    """(room id, session id) of rooms a node was running when it stopped (all nodes: None)."""
    query = select(LiveRoom.room_id, LiveRoom.session_id).where(
        LiveRoom.running.is_(True), LiveRoom.ended.is_(False)
    )
    if node_id is not None:
        query = query.where(LiveRoom.node_id == node_id)
    return [(r, s) for r, s in tx.db.execute(query.order_by(LiveRoom.room_id))]


def record_grants(tx: Tx, grants: Iterable[tuple[str, str, str, float]]) -> None:
    """Note grants (jti, room, participant, expires at) as used; safe to repeat."""
    wanted = {jti: (room, pid, exp) for jti, room, pid, exp in grants}
    if not wanted:
        return
    known = set(tx.db.scalars(select(UsedGrant.jti).where(UsedGrant.jti.in_(list(wanted)))))
    for jti, (room, pid, exp) in wanted.items():
        if jti not in known:
            tx.db.add(UsedGrant(jti=jti, room_id=room, participant_id=pid, expires_at_s=exp))


def used_grants(
    tx: Tx, *, now: float, room_id: str | None = None
) -> dict[str, tuple[float, str]]:
    """Grants used and not yet expired (of one room, or all): jti -> (expires at, participant
    id)."""
    query = select(UsedGrant.jti, UsedGrant.expires_at_s, UsedGrant.participant_id).where(
        UsedGrant.expires_at_s >= now
    )
    if room_id is not None:
        query = query.where(UsedGrant.room_id == room_id)
    return {jti: (exp, pid) for jti, exp, pid in tx.db.execute(query)}


def epoch_of(tx: Tx, room_id: str) -> int:
    """The epoch a room is run under (0: never run)."""
    row = tx.db.get(LiveRoom, room_id)
    return row.epoch if row is not None else 0


def prune_grants(tx: Tx, *, now: float) -> int:
    """Forget grants that have expired (they are refused for their age alone)."""
    done = tx.db.execute(
        delete(UsedGrant)
        .where(UsedGrant.expires_at_s < now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", 0) or 0)


def retire_room(tx: Tx, room_id: str) -> None:
    """A room that cannot be taken back (its session is over): never try again."""
    row = tx.db.get(LiveRoom, room_id)
    if row is not None:
        row.running = False
