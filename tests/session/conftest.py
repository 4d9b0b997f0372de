"""A scheduled session on the tests' real server (see tests/support/live_session.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.live_session import LiveSession, live_session


@pytest.fixture
async def live(server: Any) -> AsyncIterator[LiveSession]:
    made = await live_session(server)
    yield made
    await made.aclose()
