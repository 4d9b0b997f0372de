"""Logs as JSON lines: ids only, a traceback for every error, tokens out of the access log.

Log messages name rooms, participants and sessions by their opaque ids, never a person.
An exception's *message* can carry values (a name in a KeyError, a URL with a token), so a
logged exception keeps its type and its stack frames (file, line, function), never its text.
The access log writes the path with invite tokens replaced and query values dropped unless
the parameter is known to be harmless.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

# invite links carry their token in the path: /i/<token>
_TOKEN_PATHS = (re.compile(r"^/i/[^/]+"), "/i/[redacted]")
# query parameters whose values are safe to keep (paging and filters of the API)
SAFE_QUERY_KEYS = frozenset({"limit", "before", "action", "kind", "hazard", "sort", "status"})

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def redact_target(path: str, query: str = "") -> str:
    """The request target as the access log writes it."""
    pattern, replacement = _TOKEN_PATHS
    out = pattern.sub(replacement, path)
    if query:
        parts = []
        for item in query.split("&"):
            key, sep, value = item.partition("=")
            if key in SAFE_QUERY_KEYS:
                parts.append(f"{key}={value[:64]}" if sep else key)
            else:
                # a bare item (?<token>) or any other value may be a secret
                parts.append(f"{key[:32]}=[redacted]" if sep else "[redacted]")
        out += "?" + "&".join(parts)
    return out


def safe_traceback(exc_info: ExcInfo) -> dict[str, Any]:
    """The exception's type and frames, and those of what caused it; never its message."""
    chain: list[dict[str, Any]] = []
    exc: BaseException | None = exc_info[1]
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(chain) < 5:
        seen.add(id(exc))
        frames = traceback.extract_tb(exc.__traceback__)
        chain.append({
            "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "frames": [f"{f.filename}:{f.lineno} in {f.name}" for f in frames[-30:]],
        })
        exc = exc.__cause__ or exc.__context__
    return {"error": chain[0]["type"] if chain else "unknown", "traceback": chain}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and extra fields given as `extra`."""

    _RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            out.update(safe_traceback(record.exc_info))  # type: ignore[arg-type]
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal, with the same rule for exceptions."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # another handler may have cached the standard traceback, message included
        cached, record.exc_text = record.exc_text, None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        info = safe_traceback(ei)
        lines = []
        for link in info["traceback"]:
            lines.append(f"  {link['type']} (message withheld)")
            lines.extend(f"    {frame}" for frame in link["frames"])
        return "\n".join(lines)


def configure_logging(log_format: str = "json", level: int = logging.INFO) -> None:
    """Root logging to stderr in `log_format` ("json" or "text")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # migrations are routine; their step-by-step log is noise at start-up
    logging.getLogger("alembic").setLevel(logging.WARNING)


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, redacted target, status, size, duration, client."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        from web.control.proxies import client_address

        try:
            client = client_address(request)
        except Exception:
            client = "unknown"
        self.logger.info(
            "%s %s %s",
            request.method,
            redact_target(request.path, request.query_string),
            response.status,
            extra={
                "type": "access",
                "method": request.method,
                "target": redact_target(request.path, request.query_string),
                "status": response.status,
                "bytes": response.content_length,
                "duration_ms": round(time * 1000, 1),
                "client": client,
            },
        )
