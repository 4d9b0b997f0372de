"""Clinical safety in the running service: the hazard log, its sign-off, the evidence record
CI made, the hazard-workshop checklist, incidents, and the gate every session's lobby must
pass.

`web.control.setup_control_plane` calls `setup_safety(app, settings)`.
"""

from __future__ import annotations

from aiohttp import web

from web.control import keys as control_keys
from web.settings import Settings

from . import pages
from .api import ROUTES
from .config import SafetyConfig, load_config
from .gate import lobby_gate
from .keys import SAFETY_CONFIG


def setup_safety(
    app: web.Application, settings: Settings, config: SafetyConfig | None = None
) -> None:
    """Register the safety gate and the CSO pages; the API routes are in `ROUTES`.

    Call after the control plane has set up LOBBY_GATES and the store.
    """
    del settings  # the safety settings come from the environment (see config.load_config)
    app[SAFETY_CONFIG] = config if config is not None else load_config()
    # every path that opens a lobby or goes live consults LOBBY_GATES
    app[control_keys.LOBBY_GATES].append(lobby_gate(app))
    pages.add_pages(app)


__all__ = ["ROUTES", "SafetyConfig", "setup_safety"]
