"""The clinical safety officer's pages (and the host's checklist page), served from static/cso."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

CSO_DIR = Path(__file__).resolve().parent.parent / "static" / "cso"


def _no_store(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def cso_index(request: web.Request) -> web.StreamResponse:
    """The CSO's single page: hazard log, changes, evidence, sign-off, workshop, incidents."""
    return _no_store(web.FileResponse(CSO_DIR / "index.html"))


async def _to_cso(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/cso/")


def add_pages(app: web.Application) -> None:
    """Register /cso/ on the main application."""
    app.router.add_get("/cso/", cso_index)
    app.router.add_get("/cso", _to_cso)
    app.router.add_static("/cso/", CSO_DIR, follow_symlinks=False)
