"""Groups, their clinicians, members and pseudonyms."""

from __future__ import annotations

from aiohttp import web

from web.store import groups
from web.store.accounts import UserInfo

from .http import store_of
from .routes import Answer, Route, body_of
from .schemas import (
    ClinicianToAdd,
    GroupAnswer,
    GroupChange,
    GroupRosterAnswer,
    GroupsAnswer,
    MemberAnswer,
    MemberChange,
    NewGroup,
    NewMember,
    SuggestionsAnswer,
)


def _gid(request: web.Request) -> str:
    return request.match_info["group_id"]


async def list_groups(request: web.Request, user: UserInfo) -> Answer:
    """A clinician's groups (all groups, without members, for admins and CSOs)."""
    found = await store_of(request).run(groups.list_groups, user)
    return {"groups": [g.to_json() for g in found]}


async def create_group(request: web.Request, user: UserInfo) -> Answer:
    """Create a group."""
    body = body_of(request, NewGroup)
    group = await store_of(request).run(
        groups.create_group,
        user,
        name=body.name,
        rules=body.rules,
        clinician_usernames=body.clinicians,
    )
    return {"group": group.to_json()}


async def get_group(request: web.Request, user: UserInfo) -> Answer:
    """One group."""
    group = await store_of(request).run(groups.get_group, user, _gid(request))
    return {"group": group.to_json()}


async def update_group(request: web.Request, user: UserInfo) -> Answer:
    """Rename a group or change its rules."""
    body = body_of(request, GroupChange)
    group = await store_of(request).run(
        groups.update_group, user, _gid(request), name=body.name, rules=body.rules
    )
    return {"group": group.to_json()}


async def add_clinician(request: web.Request, user: UserInfo) -> Answer:
    """Add a clinician to a group."""
    body = body_of(request, ClinicianToAdd)
    group = await store_of(request).run(groups.add_clinician, user, _gid(request), body.username)
    return {"group": group.to_json()}


async def roster(request: web.Request, user: UserInfo) -> Answer:
    """Members with real names beside pseudonyms: this group's clinicians only (audited)."""
    entries = await store_of(request).run(groups.group_roster, user, _gid(request))
    return {"members": [e.to_json() for e in entries]}


async def add_member(request: web.Request, user: UserInfo) -> Answer:
    """Add a member with the pseudonym agreed with them."""
    body = body_of(request, NewMember)
    member = await store_of(request).run(
        groups.add_member,
        user,
        _gid(request),
        real_name=body.real_name,
        pseudonym=body.pseudonym,
        contact=body.contact,
        profile=body.profile,
        emergency_contact=body.emergency_contact,
    )
    return {"member": member.to_json()}


async def update_member(request: web.Request, user: UserInfo) -> Answer:
    """Change a member's pseudonym, real name, contact or profile (pseudonyms audited)."""
    body = body_of(request, MemberChange)
    member = await store_of(request).run(
        groups.update_member,
        user,
        _gid(request),
        request.match_info["member_id"],
        pseudonym=body.pseudonym,
        real_name=body.real_name,
        contact=body.contact,
        profile=body.profile,
        # an explicit null clears the contact; leaving the field out keeps it
        clear_contact="contact" in body.model_fields_set and body.contact is None,
        emergency_contact=body.emergency_contact,
        clear_emergency_contact="emergency_contact" in body.model_fields_set
        and body.emergency_contact is None,
    )
    return {"member": member.to_json()}


async def archive_member(request: web.Request, user: UserInfo) -> Answer:
    """Take a member out of the group (their invites are revoked)."""
    member = await store_of(request).run(
        groups.archive_member, user, _gid(request), request.match_info["member_id"]
    )
    return {"member": member.to_json()}


async def suggestions(request: web.Request, user: UserInfo) -> Answer:
    """Neutral pseudonyms free in this group."""
    names = await store_of(request).run(groups.suggest_pseudonyms, user, _gid(request))
    return {"suggestions": names}


G = "/groups/{group_id}"
CLINICIAN = ("clinician",)
ROUTES = [
    Route("GET", "/groups", list_groups, "List groups", ("clinician", "admin", "cso"),
          response=GroupsAnswer, tag="groups"),
    Route("POST", "/groups", create_group, "Create a group", ("clinician", "admin"),
          body=NewGroup, response=GroupAnswer, status=201, tag="groups"),
    Route("GET", G, get_group, "Get a group", ("clinician", "admin", "cso"),
          response=GroupAnswer, tag="groups"),
    Route("PATCH", G, update_group, "Rename a group or change its rules", CLINICIAN,
          body=GroupChange, response=GroupAnswer, tag="groups"),
    Route("POST", G + "/clinicians", add_clinician, "Add a clinician to a group",
          ("clinician", "admin"), body=ClinicianToAdd, response=GroupAnswer, tag="groups"),
    Route("GET", G + "/members", roster, "Roster with real names (group clinicians, audited)",
          CLINICIAN, response=GroupRosterAnswer, tag="members"),
    Route("POST", G + "/members", add_member, "Add a member", CLINICIAN, body=NewMember,
          response=MemberAnswer, status=201, tag="members"),
    Route("PATCH", G + "/members/{member_id}", update_member, "Change a member", CLINICIAN,
          body=MemberChange, response=MemberAnswer, tag="members"),
    Route("DELETE", G + "/members/{member_id}", archive_member,
          "Take a member out of the group", CLINICIAN, response=MemberAnswer, tag="members"),
    Route("GET", G + "/pseudonym-suggestions", suggestions, "Suggest neutral pseudonyms",
          CLINICIAN, response=SuggestionsAnswer, tag="members"),
]
