"""Typed application state keys."""

from __future__ import annotations

from aiohttp import web

from sfu.registry import RoomRegistry

from .settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ROOMS = web.AppKey("rooms", RoomRegistry)
