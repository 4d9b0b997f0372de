"""A clinician, a group with members, a session open now and its invites, built with the
real store of a running server (no mocks), plus the clinician's host grant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from web.control import keys
from web.control.grants import host_grant
from web.store import Store, accounts, groups, invites, sessions
from web.store.accounts import UserInfo

PASSWORD = "a long enough password for tests"
DEFAULT_MEMBERS: tuple[tuple[str, str], ...] = (
    ("Araminta Quillfeather", "Robin"),
    ("Barnaby Thistlewood", "Wren"),
    ("Cordelia Ravensworth", "Kit"),
)


@dataclass
class OpenSession:
    """What a test needs to run one session of a group."""

    store: Store
    clinician: UserInfo
    password: str
    group_id: str
    session_id: str
    base_url: str
    # pseudonym -> member (participant_id, member id), invite link and real name
    participant_ids: dict[str, str] = field(default_factory=dict)
    member_ids: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    real_names: dict[str, str] = field(default_factory=dict)

    def invite_state(self, pseudonym: str) -> str:
        """active | redeemed | revoked | expired, as the store has it."""
        listed = self.store.call(invites.list_for_session, self.clinician, self.session_id)
        member_id = self.member_ids[pseudonym]
        return next(i.state for i in listed if i.member_id == member_id and i.state != "revoked")

    def host_grant(self, app: Any) -> str:
        """A host join grant for the clinician, as `POST .../host-grant` mints it."""
        info = self.store.call(sessions.find_session, self.session_id)
        return str(host_grant(app[keys.CONTROL_SETTINGS], self.clinician, info)["grant"])


def open_session(
    app: Any,
    base_url: str,
    *,
    rules: dict[str, Any] | None = None,
    members: Sequence[tuple[str, str]] = DEFAULT_MEMBERS,
    username: str = "dr.hale",
) -> OpenSession:
    """Create a clinician, a group with `members` (real name, pseudonym), a session starting
    now with its lobby open, and one invite link per member."""
    store: Store = app[keys.STORE]
    clinician = store.call(
        accounts.create_user, username=username, role="clinician", password=PASSWORD
    )
    group = store.call(groups.create_group, clinician, name="Thursday group", rules=rules or {})
    now = store.clock().isoformat()
    found = store.call(sessions.schedule, clinician, group.id, starts_at=now, duration_min=60)
    store.call(sessions.transition, clinician, found.id, "open", unmet=[])
    out = OpenSession(store, clinician, PASSWORD, group.id, found.id, base_url.rstrip("/"))
    for real_name, pseudonym in members:
        member = store.call(
            groups.add_member, clinician, group.id, real_name=real_name, pseudonym=pseudonym
        )
        issued = store.call(invites.issue, clinician, found.id, member.id)
        out.participant_ids[pseudonym] = member.participant_id
        out.member_ids[pseudonym] = member.id
        out.links[pseudonym] = f"{out.base_url}/i/{issued.token}"
        out.real_names[pseudonym] = real_name
    return out
