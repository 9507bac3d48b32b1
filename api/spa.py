"""The operator dashboard, served under /app: the single-page application that web/ builds
(`./dev` runs `npm ci` and `npm run build` when its sources change) into web/dist.

/app/assets/*  the bundle's hashed files (cached for a year: a new build has new names)
/app, /app/*   index.html (never cached), so a reload or a shared link of any page works
Everything the pages show or change goes through the API with the same role checks; this
module only hands out files.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from api.access import rule
from streams.settings import ROOT

DIST = ROOT / "web" / "dist"
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
# Mantine sets style attributes (hence 'unsafe-inline' for styles only); a message shown in the
# dashboard loads no remote image, so looking at an email never counts as its open
_FRESH = {"Cache-Control": "no-cache", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
          "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                     "frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"}


def install_dashboard(app: FastAPI, dist: Path = DIST) -> None:
    """Mount the dashboard's routes on the API."""
    public = rule("public")

    @app.get("/app", include_in_schema=False, openapi_extra=public)
    async def dashboard_root():
        return RedirectResponse("/app/", status_code=307)

    @app.get("/app/{path:path}", include_in_schema=False, openapi_extra=public)
    async def dashboard(path: str):
        if path.startswith("assets/"):
            return _asset(dist, path)
        index = dist / "index.html"
        if not index.is_file():
            return JSONResponse({"error": "not_built", "message": f"the dashboard is not built ({dist} has no "
                                 "index.html): run ./dev up, or npm ci && npm run build in web/"}, status_code=503)
        return FileResponse(index, headers=_FRESH, media_type="text/html")


def _asset(dist: Path, path: str):
    """One file of the bundle, never one outside it."""
    root = (dist / "assets").resolve()
    target = (dist / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return JSONResponse({"error": "not_found", "message": f"no such dashboard file: /app/{path}"}, status_code=404)
    return FileResponse(target, headers=_IMMUTABLE)
