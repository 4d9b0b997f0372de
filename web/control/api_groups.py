"""Groups, their clinicians, members and pseudonyms."""

from __future__ import annotations

from aiohttp import web

from web.store import groups
from web.store.accounts import UserInfo

from .errors import ApiError
from .http import authed, read_json, store_of
from .routes import Route


def _gid(request: web.Request) -> str:
    return request.match_info["group_id"]


@authed("clinician", "admin", "cso")
async def list_groups(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """A clinician's groups (all groups, without members, for admins and CSOs)."""
    found = await store_of(request).run(groups.list_groups, user)
    return web.json_response({"groups": [g.to_json() for g in found]})


@authed("clinician", "admin")
async def create_group(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Create a group."""
    body = await read_json(request)
    clinicians = body.get("clinicians")
    if clinicians is not None and (
        not isinstance(clinicians, list)
        or not all(isinstance(c, str) for c in clinicians)
        or len(clinicians) > 20
    ):
        raise ApiError(400, "invalid_clinician", "clinicians must be a list of usernames")
    group = await store_of(request).run(
        groups.create_group,
        user,
        name=body.get("name"),
        rules=body.get("rules"),
        clinician_usernames=clinicians,
    )
    return web.json_response({"group": group.to_json()}, status=201)


@authed("clinician", "admin", "cso")
async def get_group(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """One group."""
    group = await store_of(request).run(groups.get_group, user, _gid(request))
    return web.json_response({"group": group.to_json()})


@authed("clinician")
async def update_group(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Rename a group or change its rules."""
    body = await read_json(request)
    group = await store_of(request).run(
        groups.update_group, user, _gid(request), name=body.get("name"), rules=body.get("rules")
    )
    return web.json_response({"group": group.to_json()})


@authed("clinician", "admin")
async def add_clinician(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Add a clinician to a group."""
    body = await read_json(request)
    group = await store_of(request).run(
        groups.add_clinician, user, _gid(request), body.get("username")
    )
    return web.json_response({"group": group.to_json()})


@authed("clinician")
async def roster(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Members with real names beside pseudonyms: this group's clinicians only (audited)."""
    entries = await store_of(request).run(groups.group_roster, user, _gid(request))
    return web.json_response({"members": [e.to_json() for e in entries]})


@authed("clinician")
async def add_member(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Add a member with the pseudonym agreed with them."""
    body = await read_json(request)
    member = await store_of(request).run(
        groups.add_member,
        user,
        _gid(request),
        real_name=body.get("real_name"),
        pseudonym=body.get("pseudonym"),
        contact=body.get("contact"),
        profile=body.get("profile"),
    )
    return web.json_response({"member": member.to_json()}, status=201)


@authed("clinician")
async def update_member(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Change a member's pseudonym, real name, contact or profile (pseudonyms audited)."""
    body = await read_json(request)
    member = await store_of(request).run(
        groups.update_member,
        user,
        _gid(request),
        request.match_info["member_id"],
        pseudonym=body.get("pseudonym"),
        real_name=body.get("real_name"),
        contact=body.get("contact"),
        profile=body.get("profile"),
        clear_contact=body.get("contact", 0) is None,
    )
    return web.json_response({"member": member.to_json()})


@authed("clinician")
async def archive_member(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Take a member out of the group (their invites are revoked)."""
    member = await store_of(request).run(
        groups.archive_member, user, _gid(request), request.match_info["member_id"]
    )
    return web.json_response({"member": member.to_json()})


@authed("clinician")
async def suggestions(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Neutral pseudonyms free in this group."""
    names = await store_of(request).run(groups.suggest_pseudonyms, user, _gid(request))
    return web.json_response({"suggestions": names})


G = "/groups/{group_id}"
ROUTES = [
    Route(
        "GET", "/groups", list_groups, "List groups", ("clinician", "admin", "cso"), tag="groups"
    ),
    Route(
        "POST",
        "/groups",
        create_group,
        "Create a group",
        ("clinician", "admin"),
        {"name": "string", "rules": "object", "clinicians": "array"},
        "groups",
    ),
    Route("GET", G, get_group, "Get a group", ("clinician", "admin", "cso"), tag="groups"),
    Route(
        "PATCH",
        G,
        update_group,
        "Rename a group or change its rules",
        ("clinician",),
        {"name": "string", "rules": "object"},
        "groups",
    ),
    Route(
        "POST",
        G + "/clinicians",
        add_clinician,
        "Add a clinician to a group",
        ("clinician", "admin"),
        {"username": "string"},
        "groups",
    ),
    Route(
        "GET",
        G + "/members",
        roster,
        "Roster with real names (group clinicians, audited)",
        ("clinician",),
        tag="members",
    ),
    Route(
        "POST",
        G + "/members",
        add_member,
        "Add a member",
        ("clinician",),
        {"real_name": "string", "pseudonym": "string", "contact": "string", "profile": "string"},
        "members",
    ),
    Route(
        "PATCH",
        G + "/members/{member_id}",
        update_member,
        "Change a member",
        ("clinician",),
        {"real_name": "string", "pseudonym": "string", "contact": "string", "profile": "string"},
        "members",
    ),
    Route(
        "DELETE",
        G + "/members/{member_id}",
        archive_member,
        "Take a member out of the group",
        ("clinician",),
        tag="members",
    ),
    Route(
        "GET",
        G + "/pseudonym-suggestions",
        suggestions,
        "Suggest neutral pseudonyms",
        ("clinician",),
        tag="members",
    ),
]
