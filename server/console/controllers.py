"""The organiser and lead web console, served by the app itself (no separate server).

The page is plain HTML + ES modules in `server/console/static/`; the third-party
libraries (Leaflet, Leaflet-Geoman, Chart.js) are installed from npm at build time
by `make console` and copied to `static/vendor/` (git-ignored), so nothing is
fetched from a CDN at run time. The page talks to the JSON API with a bearer token
like any other client.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, MediaType, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File, Redirect

from server.dependencies import AppSettings

STATIC_DIR = Path(__file__).resolve().parent / "static"

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/css", ".css")
mimetypes.add_type("image/svg+xml", ".svg")


class ConsoleConfig(msgspec.Struct):
    """What the console needs to know before sign-in: the map tile URL (empty: our own layers only)."""

    tile_url: str
    tile_attribution: str
    vendor_built: bool


def resolve_static_file(file_path: str) -> Path:
    """The file under `static/` named by `file_path`, refusing anything that escapes the folder."""
    candidate = (STATIC_DIR / file_path.lstrip("/")).resolve()
    if not candidate.is_relative_to(STATIC_DIR) or not candidate.is_file():
        raise NotFoundException(f"No console file {file_path!r}.")
    return candidate


class ConsoleController(Controller):
    """The console page, its static files and its public configuration."""

    path = ""
    include_in_schema = False

    @get("/", opt={"exclude_from_auth": True})
    async def root(self) -> Redirect:
        """Send browsers to the console."""
        return Redirect("/console")

    @get("/console", media_type=MediaType.HTML, opt={"exclude_from_auth": True}, cache_control=None)
    async def console(self) -> File:
        """The console's single page (organiser and lead views)."""
        return File(STATIC_DIR / "index.html", media_type=MediaType.HTML, content_disposition_type="inline",
                    headers={"cache-control": "no-cache"})

    @get("/console/config.json", opt={"exclude_from_auth": True})
    async def console_config(self, settings: AppSettings) -> ConsoleConfig:
        """Public settings for the page: tile URL (none configured: the map shows only our vector layers)."""
        host = urlsplit(settings.tile_url.replace("{s}", "a")).hostname or ""
        attribution = "© OpenStreetMap contributors" if "openstreetmap" in host else (f"Tiles: {host}" if host else "")
        return ConsoleConfig(
            tile_url=settings.tile_url,
            tile_attribution=attribution,
            vendor_built=(STATIC_DIR / "vendor" / "leaflet" / "leaflet.js").is_file(),
        )

    @get("/static/{file_path:path}", opt={"exclude_from_auth": True})
    async def static_file(self, file_path: FromPath[str]) -> File:
        """A file of the console (our scripts and styles, and the npm-built vendor libraries)."""
        path = resolve_static_file(file_path)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return File(path, filename=path.name, media_type=media_type, content_disposition_type="inline",
                    headers={"cache-control": "no-cache"})
