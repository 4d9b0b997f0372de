"""Typed application keys of the live rooms' store link."""

from __future__ import annotations

from aiohttp import web

from .writer import DurableWriter

WRITER = web.AppKey("live_writer", DurableWriter)
