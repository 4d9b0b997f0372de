"""Operating the service: health and readiness, Prometheus metrics, logs.

`web.app.create_app` calls `setup_ops(app)`; `confide serve` configures logging and the
access log (see `logs`).
"""

from __future__ import annotations

from aiohttp import web

from .health import setup_health
from .metrics import setup_metrics


def setup_ops(app: web.Application) -> None:
    """/healthz, /readyz and /metrics on the main application."""
    setup_health(app)
    setup_metrics(app)


__all__ = ["setup_ops"]
