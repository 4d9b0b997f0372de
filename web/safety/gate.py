"""The clinical-safety lobby gate: the control plane asks it before a lobby opens or goes live."""

from __future__ import annotations

import asyncio

from aiohttp import web

from session_rules.gate import GateResult, UnmetItem, evaluate
from web.control import keys as control_keys
from web.store import Store
from web.store import safety as safety_store

from . import logfile
from .config import SafetyConfig
from .errors import HazardLogUnreadable
from .keys import SAFETY_CONFIG


async def gate_result(config: SafetyConfig, store: Store, session_id: str | None) -> GateResult:
    """The gate for one session (None: the service-wide part, without a host checklist)."""
    inputs = await store.run(safety_store.gate_inputs, session_id or "")
    try:
        snap = await asyncio.to_thread(logfile.snapshot, config)
    except HazardLogUnreadable as exc:
        # fail closed: without a readable log there is nothing signed off to rely on
        return GateResult(False, [UnmetItem("log_invalid", exc.message)])
    result = evaluate(
        log_hash=snap.hash,
        signed_off_hashes=inputs.signed_off_hashes,
        log=snap.log,
        workshop_answers=inputs.workshop_answers,
        workshop_questions=config.questions,
        host_checklist=inputs.host_checklist,
    )
    if session_id is None:
        unmet = [u for u in result.unmet if u.code != "host_checklist_incomplete"]
        return GateResult(not unmet, unmet)
    return result


def lobby_gate(app: web.Application) -> control_keys.LobbyGate:
    """The check registered into LOBBY_GATES: the unmet items' messages (empty when open)."""

    async def check(session_id: str) -> list[str]:
        result = await gate_result(app[SAFETY_CONFIG], app[control_keys.STORE], session_id)
        return [u.message for u in result.unmet]

    return check
