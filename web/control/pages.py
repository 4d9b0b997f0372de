"""Pages: the clinician's pages, the login page, and the invite landing page."""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

CLINICIAN_DIR = Path(__file__).resolve().parent.parent / "static" / "clinician"
# the room client's entry module (served from the shared static directory); it reads the
# token from the path, strips it from the address bar, and redeems it after the checklist
INVITE_CLIENT_MODULE = "/static/invite.js"
INVITE_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Join your group - Confide</title>
<link rel="stylesheet" href="/clinician/style.css">
</head>
<body>
<main id="app" data-invite-prefix="/i/">
<h1>Join your group</h1>
<p id="status" role="status">Loading&hellip;</p>
<noscript><p>This page needs JavaScript to join the session.</p></noscript>
</main>
<footer><p><a href="/accessibility" target="_blank" rel="noopener">Accessibility statement</a></p></footer>
<script type="module" src="{module}"></script>
</body>
</html>
"""


def _no_store(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def login_page(request: web.Request) -> web.StreamResponse:
    """The login form."""
    return _no_store(web.FileResponse(CLINICIAN_DIR / "login.html"))


async def clinician_index(request: web.Request) -> web.StreamResponse:
    """The clinician's single page (groups, roster, sessions, invites)."""
    return _no_store(web.FileResponse(CLINICIAN_DIR / "index.html"))


async def invite_landing(request: web.Request) -> web.StreamResponse:
    """The page a member's link opens; it does not redeem anything by itself (link previews
    fetch pages without running scripts, and must not use up the link)."""
    page = INVITE_PAGE.replace("{module}", html.escape(INVITE_CLIENT_MODULE))
    return _no_store(web.Response(text=page, content_type="text/html"))


def add_pages(app: web.Application) -> None:
    """Register the page routes on the main application."""
    app.router.add_get("/login", login_page)
    app.router.add_get("/clinician/", clinician_index)
    app.router.add_get("/clinician", _to_clinician)
    app.router.add_static("/clinician/", CLINICIAN_DIR, follow_symlinks=False)
    app.router.add_get("/i/{token}", invite_landing)


async def _to_clinician(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/clinician/")
