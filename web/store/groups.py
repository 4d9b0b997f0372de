"""Groups, their clinicians and members (real names encrypted, pseudonyms checked)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from confidentiality import pseudonyms
from confidentiality.profiles import Profile

from . import audit
from .accounts import UserInfo
from .db import Tx, new_id
from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .models import Group, GroupClinician, Member, User
from .validate import json_size_ok, optional_text, text

MAX_GROUP_NAME = 120
MAX_REAL_NAME = 120
MAX_CONTACT = 200
MAX_RULES_JSON = 8192


@dataclass(frozen=True)
class GroupInfo:
    id: str
    name: str
    rules: dict[str, Any]
    clinician_ids: tuple[str, ...]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "rules": self.rules,
            "clinician_ids": list(self.clinician_ids),
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class MemberInfo:
    """A member as anyone but the group's clinicians may know them: no real name."""

    id: str
    group_id: str
    participant_id: str
    pseudonym: str
    profile: str | None
    active: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group_id": self.group_id,
            "participant_id": self.participant_id,
            "pseudonym": self.pseudonym,
            "profile": self.profile,
            "active": self.active,
        }


@dataclass(frozen=True)
class RosterEntry:
    """A member with their real name: for the group's clinicians' eyes only."""

    member: MemberInfo
    real_name: str
    contact: str | None
    emergency_contact: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**self.member.to_json(), "real_name": self.real_name, "contact": self.contact,
                "emergency_contact": self.emergency_contact}


def validate_rules(rules: object) -> dict[str, Any]:
    """Group rules as a dict, checked by session_rules.GroupRules; defaults filled in."""
    from session_rules.errors import InvalidRules
    from session_rules.rules import GroupRules

    if rules is None:
        return GroupRules().to_dict()
    if not isinstance(rules, dict) or not json_size_ok(rules, MAX_RULES_JSON):
        raise InvalidInput("rules must be a JSON object of at most 8 KiB", code="invalid_rules")
    try:
        return GroupRules.from_dict(rules).to_dict()
    except InvalidRules as exc:
        raise InvalidInput(exc.message, code="invalid_rules") from None
    except TypeError:
        raise InvalidInput("rules are not well formed", code="invalid_rules") from None


def _group_info(tx: Tx, group: Group) -> GroupInfo:
    ids = tx.db.scalars(
        select(GroupClinician.user_id)
        .where(GroupClinician.group_id == group.id)
        .order_by(GroupClinician.user_id)
    ).all()
    return GroupInfo(group.id, group.name, dict(group.rules), tuple(ids), group.created_at)


def _member_info(m: Member) -> MemberInfo:
    return MemberInfo(m.id, m.group_id, m.participant_id, m.pseudonym, m.profile, m.active)


def is_group_clinician(tx: Tx, user: UserInfo, group_id: str) -> bool:
    """True when the user is a clinician of this group."""
    if user.role != "clinician":
        return False
    return tx.db.get(GroupClinician, (group_id, user.id)) is not None


def _group(tx: Tx, group_id: str) -> Group:
    group = tx.db.get(Group, group_id) if isinstance(group_id, str) else None
    if group is None:
        raise NotFound("no such group", code="group_not_found")
    return group


def require_group_clinician(tx: Tx, user: UserInfo, group_id: str) -> Group:
    """The group, if the user is one of its clinicians; Forbidden otherwise."""
    group = _group(tx, group_id)
    if not is_group_clinician(tx, user, group_id):
        raise Forbidden("only this group's clinicians may do this", code="not_group_clinician")
    return group


def create_group(
    tx: Tx,
    user: UserInfo,
    *,
    name: object,
    rules: object = None,
    clinician_usernames: list[str] | None = None,
) -> GroupInfo:
    """A clinician creates a group they run; an admin creates one for named clinicians."""
    if user.role not in ("clinician", "admin"):
        raise Forbidden("only clinicians and admins create groups", code="forbidden_role")
    clean_name = text(name, "name", max_len=MAX_GROUP_NAME)
    clean_rules = validate_rules(rules)
    clinician_ids: list[str] = [user.id] if user.role == "clinician" else []
    for username in clinician_usernames or []:
        other = tx.db.scalar(select(User).where(User.username == username))
        if other is None or other.role != "clinician":
            raise InvalidInput(
                "clinicians must name existing clinician accounts", code="invalid_clinician"
            )
        if other.id not in clinician_ids:
            clinician_ids.append(other.id)
    if not clinician_ids:
        raise InvalidInput("a group needs at least one clinician", code="invalid_clinician")
    group = Group(
        id=new_id("g"), name=clean_name, rules=clean_rules, created_by=user.id, created_at=tx.now
    )
    tx.db.add(group)
    tx.db.flush()
    for cid in clinician_ids:
        tx.db.add(GroupClinician(group_id=group.id, user_id=cid, added_at=tx.now))
    tx.db.flush()
    audit.append(tx, f"user:{user.id}", "group.created", group.id, {"clinicians": clinician_ids})
    return _group_info(tx, group)


def list_groups(tx: Tx, user: UserInfo) -> list[GroupInfo]:
    """A clinician's own groups; every group for admins and CSOs (no member data)."""
    query = select(Group).order_by(Group.name, Group.id)
    if user.role == "clinician":
        query = query.join(GroupClinician, GroupClinician.group_id == Group.id).where(
            GroupClinician.user_id == user.id
        )
    return [_group_info(tx, g) for g in tx.db.scalars(query)]


def get_group(tx: Tx, user: UserInfo, group_id: str) -> GroupInfo:
    """One group: its clinicians, or any admin/CSO."""
    if user.role in ("admin", "cso"):
        return _group_info(tx, _group(tx, group_id))
    return _group_info(tx, require_group_clinician(tx, user, group_id))


def group_rules(tx: Tx, group_id: str) -> dict[str, Any]:
    """The group's rules dict (for the room wiring)."""
    return dict(_group(tx, group_id).rules)


def update_group(
    tx: Tx, user: UserInfo, group_id: str, *, name: object = None, rules: object = None
) -> GroupInfo:
    """Rename a group or change its rules (its clinicians only)."""
    group = require_group_clinician(tx, user, group_id)
    changed: list[str] = []
    if name is not None:
        group.name = text(name, "name", max_len=MAX_GROUP_NAME)
        changed.append("name")
    if rules is not None:
        group.rules = validate_rules(rules)
        changed.append("rules")
    if changed:
        audit.append(tx, f"user:{user.id}", "group.updated", group.id, {"changed": changed})
    return _group_info(tx, group)


def add_clinician(tx: Tx, user: UserInfo, group_id: str, username: object) -> GroupInfo:
    """Add a clinician to a group (by one of its clinicians, or an admin)."""
    group = _group(tx, group_id)
    if user.role != "admin":
        require_group_clinician(tx, user, group_id)
    other = (
        tx.db.scalar(select(User).where(User.username == username))
        if isinstance(username, str)
        else None
    )
    if other is None or other.role != "clinician":
        raise InvalidInput("username must name a clinician account", code="invalid_clinician")
    if tx.db.get(GroupClinician, (group_id, other.id)) is None:
        tx.db.add(GroupClinician(group_id=group_id, user_id=other.id, added_at=tx.now))
        tx.db.flush()
        audit.append(tx, f"user:{user.id}", "group.clinician_added", group_id, {"user": other.id})
    return _group_info(tx, group)


def _real_name(tx: Tx, m: Member) -> str:
    return tx.cipher.decrypt(m.real_name_enc, context=f"member:{m.id}:real_name")


def _contact(tx: Tx, m: Member) -> str | None:
    if m.contact_enc is None:
        return None
    return tx.cipher.decrypt(m.contact_enc, context=f"member:{m.id}:contact")


def _emergency_contact(tx: Tx, m: Member) -> str | None:
    if m.emergency_contact_enc is None:
        return None
    return tx.cipher.decrypt(m.emergency_contact_enc, context=f"member:{m.id}:emergency_contact")


def member_contacts(tx: Tx, member: Member) -> tuple[str | None, str | None]:
    """A member's own contact and emergency contact (callers are on a clinician-only path)."""
    return _contact(tx, member), _emergency_contact(tx, member)


def _check_profile(profile: object) -> str | None:
    if profile is None:
        return None
    try:
        return Profile(str(profile)).value
    except ValueError:
        known = ", ".join(p.value for p in Profile)
        raise InvalidInput(f"profile must be one of {known}", code="invalid_profile") from None


def _checked_pseudonym(
    tx: Tx, group_id: str, pseudonym: object, *, excluding: str | None, own_real_name: str | None
) -> str:
    others = [
        m
        for m in tx.db.scalars(select(Member).where(Member.group_id == group_id))
        if m.id != excluding
    ]
    real_names = [_real_name(tx, m) for m in others if m.active]
    if own_real_name is not None:
        real_names.append(own_real_name)
    try:
        return pseudonyms.validate_pseudonym(
            text(pseudonym, "pseudonym", max_len=64),
            taken_skeletons=[m.pseudonym_skeleton for m in others],
            real_names=real_names,
        )
    except pseudonyms.PseudonymError as exc:
        code = exc.code
        raise (Conflict if code == "pseudonym_taken" else InvalidInput)(
            exc.message, code=code
        ) from None


def add_member(
    tx: Tx,
    user: UserInfo,
    group_id: str,
    *,
    real_name: object,
    pseudonym: object,
    contact: object = None,
    profile: object = None,
    emergency_contact: object = None,
) -> MemberInfo:
    """Add a member with the pseudonym agreed with them (the group's clinicians only)."""
    require_group_clinician(tx, user, group_id)
    clean_real = text(real_name, "real_name", max_len=MAX_REAL_NAME)
    clean_contact = optional_text(contact, "contact", max_len=MAX_CONTACT)
    clean_emergency = optional_text(emergency_contact, "emergency_contact", max_len=MAX_CONTACT)
    clean_profile = _check_profile(profile)
    shown = _checked_pseudonym(tx, group_id, pseudonym, excluding=None, own_real_name=clean_real)
    member_id = new_id("m")
    member = Member(
        id=member_id,
        group_id=group_id,
        participant_id=new_id("p"),
        pseudonym=shown,
        pseudonym_skeleton=pseudonyms.skeleton(shown),
        real_name_enc=tx.cipher.encrypt(clean_real, context=f"member:{member_id}:real_name"),
        contact_enc=(
            tx.cipher.encrypt(clean_contact, context=f"member:{member_id}:contact")
            if clean_contact
            else None
        ),
        emergency_contact_enc=(
            tx.cipher.encrypt(clean_emergency, context=f"member:{member_id}:emergency_contact")
            if clean_emergency
            else None
        ),
        profile=clean_profile,
        active=True,
        created_at=tx.now,
    )
    tx.db.add(member)
    tx.db.flush()
    # the audit names the member by id and pseudonym, never by real name
    audit.append(
        tx, f"user:{user.id}", "member.added", member_id, {"group": group_id, "pseudonym": shown}
    )
    return _member_info(member)


def _member(tx: Tx, group_id: str, member_id: str) -> Member:
    member = tx.db.get(Member, member_id) if isinstance(member_id, str) else None
    if member is None or member.group_id != group_id:
        raise NotFound("no such member in this group", code="member_not_found")
    return member


def update_member(
    tx: Tx,
    user: UserInfo,
    group_id: str,
    member_id: str,
    *,
    pseudonym: object = None,
    real_name: object = None,
    contact: object = None,
    profile: object = None,
    clear_contact: bool = False,
    emergency_contact: object = None,
    clear_emergency_contact: bool = False,
) -> MemberInfo:
    """Change a member's details; a pseudonym change is audited with old and new."""
    require_group_clinician(tx, user, group_id)
    member = _member(tx, group_id, member_id)
    changed: list[str] = []
    new_real = (
        text(real_name, "real_name", max_len=MAX_REAL_NAME) if real_name is not None else None
    )
    if pseudonym is not None or new_real is not None:
        shown = _checked_pseudonym(
            tx,
            group_id,
            member.pseudonym if pseudonym is None else pseudonym,
            excluding=member.id,
            own_real_name=new_real or _real_name(tx, member),
        )
        if shown != member.pseudonym:
            old = member.pseudonym
            member.pseudonym = shown
            member.pseudonym_skeleton = pseudonyms.skeleton(shown)
            audit.append(
                tx,
                f"user:{user.id}",
                "pseudonym.changed",
                member.id,
                {"group": group_id, "from": old, "to": shown},
            )
    if new_real is not None:
        member.real_name_enc = tx.cipher.encrypt(new_real, context=f"member:{member.id}:real_name")
        changed.append("real_name")
    if contact is not None or clear_contact:
        clean = None if clear_contact else optional_text(contact, "contact", max_len=MAX_CONTACT)
        member.contact_enc = (
            tx.cipher.encrypt(clean, context=f"member:{member.id}:contact") if clean else None
        )
        changed.append("contact")
    if emergency_contact is not None or clear_emergency_contact:
        clean = None if clear_emergency_contact else optional_text(
            emergency_contact, "emergency_contact", max_len=MAX_CONTACT)
        member.emergency_contact_enc = (
            tx.cipher.encrypt(clean, context=f"member:{member.id}:emergency_contact")
            if clean else None
        )
        changed.append("emergency_contact")
    if profile is not None:
        member.profile = _check_profile(profile)
        changed.append("profile")
    if changed:
        audit.append(
            tx,
            f"user:{user.id}",
            "member.updated",
            member.id,
            {"group": group_id, "changed": changed},
        )
    return _member_info(member)


def archive_member(tx: Tx, user: UserInfo, group_id: str, member_id: str) -> MemberInfo:
    """Take a member out of the group; their open invites are revoked."""
    from .invites import revoke_member_invites

    require_group_clinician(tx, user, group_id)
    member = _member(tx, group_id, member_id)
    if member.active:
        member.active = False
        revoke_member_invites(tx, member.id, actor=f"user:{user.id}")
        audit.append(tx, f"user:{user.id}", "member.archived", member.id, {"group": group_id})
    return _member_info(member)


def list_members(tx: Tx, user: UserInfo, group_id: str) -> list[MemberInfo]:
    """Members by pseudonym, without real names (the group's clinicians only)."""
    require_group_clinician(tx, user, group_id)
    rows = tx.db.scalars(
        select(Member).where(Member.group_id == group_id).order_by(Member.created_at, Member.id)
    )
    return [_member_info(m) for m in rows]


def group_roster(tx: Tx, user: UserInfo, group_id: str) -> list[RosterEntry]:
    """Members with real names, for this group's clinicians only; each view is audited."""
    require_group_clinician(tx, user, group_id)
    rows = list(
        tx.db.scalars(
            select(Member).where(Member.group_id == group_id).order_by(Member.created_at, Member.id)
        )
    )
    audit.append(
        tx, f"user:{user.id}", "roster.viewed", group_id, {"members": [m.id for m in rows]}
    )
    return [
        RosterEntry(_member_info(m), _real_name(tx, m), _contact(tx, m), _emergency_contact(tx, m))
        for m in rows
    ]


def suggest_pseudonyms(tx: Tx, user: UserInfo, group_id: str, count: int = 5) -> list[str]:
    """Neutral names free in this group and unlike any member's real name."""
    require_group_clinician(tx, user, group_id)
    rows = list(tx.db.scalars(select(Member).where(Member.group_id == group_id)))
    return pseudonyms.suggest(
        taken_skeletons=[m.pseudonym_skeleton for m in rows],
        real_names=[_real_name(tx, m) for m in rows if m.active],
        count=count,
    )


def member_by_participant(tx: Tx, participant_id: str) -> Member | None:
    """The member a room participant id belongs to."""
    return tx.db.scalar(select(Member).where(Member.participant_id == participant_id))


def member_real_name(tx: Tx, member: Member) -> str:
    """Decrypt one member's real name (callers must be on a clinician-only path)."""
    return _real_name(tx, member)
