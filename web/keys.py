"""Typed application state keys."""

from __future__ import annotations

from aiohttp import web

from sfu.registry import RoomRegistry

from .settings import Settings
from .signaling.session import Router

SETTINGS = web.AppKey("settings", Settings)
ROOMS = web.AppKey("rooms", RoomRegistry)
# where a signaling join belongs, when several servers share the rooms (none alone)
ROUTER: web.AppKey[Router] = web.AppKey("router")
