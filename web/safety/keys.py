"""Typed application keys of the clinical-safety part."""

from __future__ import annotations

from aiohttp import web

from .config import SafetyConfig

SAFETY_CONFIG = web.AppKey("safety_config", SafetyConfig)
