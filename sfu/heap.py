"""Give memory freed by closed pipelines back to the operating system.

glibc keeps what a thread freed in that thread's arena for reuse. Each privacy pipeline runs
its models in threads of its own and frees tens of MiB when it closes, so a process where
members come and go (a media worker every room shares) would hold on to more and more of it:
measured, +68 MiB in a worker after ~50 pipelines had opened and closed. `malloc_trim`
returns it. Elsewhere (another libc) this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

# after the last close: a pipeline releases its models in its own thread a moment later
TRIM_DELAY_S = 2.0

_malloc_trim = None
try:
    _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    _malloc_trim.argtypes = [ctypes.c_size_t]
    _malloc_trim.restype = ctypes.c_int
except (OSError, AttributeError):
    pass

_scheduled: dict[asyncio.AbstractEventLoop, asyncio.TimerHandle] = {}


def trim() -> None:
    """Return free heap memory to the OS now (glibc only)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def trim_soon(loop: asyncio.AbstractEventLoop) -> None:
    """Trim once, `TRIM_DELAY_S` after the last of a burst of closes."""
    handle = _scheduled.pop(loop, None)
    if handle is not None:
        handle.cancel()

    def run() -> None:
        _scheduled.pop(loop, None)
        try:
            trim()
        except Exception:  # never worth failing for
            logger.debug("malloc_trim failed", exc_info=True)

    _scheduled[loop] = loop.call_later(TRIM_DELAY_S, run)
