"""Typed application keys of the clinical-safety part."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from .config import SafetyConfig


@dataclass
class BackgroundTasks:
    """Evidence runs started by this process, cancelled when the application stops."""

    tasks: set[asyncio.Task[None]] = field(default_factory=set)


SAFETY_CONFIG = web.AppKey("safety_config", SafetyConfig)
EVIDENCE_TASKS = web.AppKey("safety_evidence_tasks", BackgroundTasks)
