"""The canvasser app: an installable offline web app served by the server itself at ``/app``.

Same origin as the API, so the phone needs no CORS and no second server. The page is plain
HTML + ES modules in ``server/phone/static/`` (no inline script: it runs under a strict CSP);
idb and Leaflet come from npm at build time (``make phone``) into ``static/vendor/``
(git-ignored). The service worker at ``/app/sw.js`` (scope ``/app/``) precaches the shell
listed in ``SHELL_FILES``; its cache name is a hash of those files, so a new build replaces it.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec
from litestar import Controller, MediaType, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import File, Redirect

from server.accounts.guards import MEMBERS, require_role
from server.dependencies import AppSettings, CurrentUser, DbSession
from server.phone.layers import street_layer

STATIC_DIR = Path(__file__).resolve().parent / "static"
APP = "/app"

SHELL_FILES = (
    "app.css",
    "js/app.js",
    "js/ui.js",
    "js/map.js",
    "js/strings.js",
    "js/sync-core.js",
    "js/hlc.js",
    "js/stores.js",
    "js/tiles.js",
    "vendor/idb/idb.js",
    "vendor/leaflet/leaflet.js",
    "vendor/leaflet/leaflet.css",
    "vendor/leaflet/images/marker-icon.png",
    "vendor/icons/icon-192.png",
    "vendor/icons/icon-512.png",
)
"""Everything the app needs to start with no network (besides ``/app/`` and the manifest)."""

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")
mimetypes.add_type("application/manifest+json", ".webmanifest")

NO_CACHE = {"cache-control": "no-cache"}


class PhoneConfig(msgspec.Struct):
    """What the app needs before sign-in: map tiles (empty: our own street layer) and its build."""

    tile_url: str
    tile_attribution: str
    shell_version: str
    vendor_built: bool


@cache
def shell_version() -> str:
    """A hash of the shell files: the service worker's cache name, so any change replaces the cache."""
    digest = hashlib.sha256()
    for name in ("index.html", *SHELL_FILES):
        path = STATIC_DIR / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"missing")
    return digest.hexdigest()[:16]


def service_worker_source() -> str:
    """The service worker: the shell precache list and version, then the fixed worker code."""
    urls = [f"{APP}/", f"{APP}/manifest.webmanifest", *(f"{APP}/static/{name}" for name in SHELL_FILES)]
    head = f"const VERSION = {json.dumps(shell_version())};\nconst SHELL = {json.dumps(urls)};\n"
    return head + (STATIC_DIR / "sw-body.js").read_text()


def manifest() -> dict[str, Any]:
    """The web app manifest: standalone, scoped to /app/, PNG icons drawn at build time."""
    icons = [
        {"src": f"{APP}/static/vendor/icons/icon-{size}.png", "sizes": f"{size}x{size}", "type": "image/png", "purpose": "any maskable"}
        for size in (192, 512)
    ]
    return {
        "name": "Canvass",
        "short_name": "Canvass",
        "description": "Knock doors with your walk list, online or not.",
        "id": f"{APP}/",
        "start_url": f"{APP}/",
        "scope": f"{APP}/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#0b3d91",
        "icons": icons,
    }


def resolve_phone_file(file_path: str) -> Path:
    """The file under the app's ``static/`` named by ``file_path``, refusing anything that escapes it."""
    candidate = (STATIC_DIR / file_path.lstrip("/")).resolve()
    if not candidate.is_relative_to(STATIC_DIR) or not candidate.is_file():
        raise NotFoundException(f"No app file {file_path!r}.")
    return candidate


def _index() -> File:
    return File(STATIC_DIR / "index.html", media_type=MediaType.HTML, content_disposition_type="inline", headers=NO_CACHE)


class PhoneAppController(Controller):
    """The app's page, service worker, manifest, static files and public configuration."""

    path = ""
    include_in_schema = False

    @get(APP, media_type=MediaType.HTML, opt={"exclude_from_auth": True}, cache_control=None)
    async def app_page(self, request: Request[Any, Any, Any]) -> File | Redirect:
        """The app's one page; ``/app`` goes to ``/app/`` so the page is inside the worker's scope."""
        raw_path = bytes(request.scope.get("raw_path") or b"").decode("latin-1")  # Litestar strips the slash from .path
        if not raw_path.endswith("/"):
            query = f"?{request.url.query}" if request.url.query else ""
            return Redirect(f"{APP}/{query}")
        return _index()

    @get(f"{APP}/join", media_type=MediaType.HTML, opt={"exclude_from_auth": True}, cache_control=None)
    async def join_page(self) -> File:
        """Where a join link or QR code lands (``/app/join?code=...``): the same page, on its join screen."""
        return _index()

    @get("/join/{code:str}", opt={"exclude_from_auth": True})
    async def old_join_link(self, code: FromPath[str]) -> Redirect:
        """Join links printed before the app existed lead to it."""
        return Redirect(f"{APP}/join?code={quote(code)}")

    @get(f"{APP}/sw.js", opt={"exclude_from_auth": True})
    async def service_worker(self) -> Response[str]:
        """The service worker (scope /app/), never cached by HTTP so a new shell is found at once."""
        return Response(service_worker_source(), media_type="text/javascript", headers={**NO_CACHE, "service-worker-allowed": f"{APP}/"})

    @get(f"{APP}/manifest.webmanifest", opt={"exclude_from_auth": True})
    async def web_manifest(self) -> Response[bytes]:
        """The web app manifest ("Add to home screen")."""
        return Response(msgspec.json.encode(manifest()), media_type="application/manifest+json", headers=NO_CACHE)

    @get(f"{APP}/config.json", opt={"exclude_from_auth": True})
    async def app_config(self, settings: AppSettings) -> PhoneConfig:
        """Public settings: the tile URL (none: the app draws our street layer) and the shell version."""
        host = urlsplit(settings.tile_url.replace("{s}", "a")).hostname or ""
        attribution = "© OpenStreetMap contributors" if "openstreetmap" in host else (f"Tiles: {host}" if host else "")
        return PhoneConfig(
            tile_url=settings.tile_url, tile_attribution=attribution, shell_version=shell_version(),
            vendor_built=(STATIC_DIR / "vendor" / ".built").is_file(),
        )

    @get(f"{APP}/static/{{file_path:path}}", opt={"exclude_from_auth": True})
    async def static_file(self, file_path: FromPath[str]) -> File:
        """A file of the app (our modules and styles, and the npm-built vendor libraries)."""
        path = resolve_phone_file(file_path)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return File(path, filename=path.name, media_type=media_type, content_disposition_type="inline", headers=NO_CACHE)


class StreetLayerController(Controller):
    """The street layer of a campaign (maps without a tile server: the app and the console)."""

    path = "/api/campaigns/{campaign_id:int}"
    tags = ["geography"]

    @get("/streets.geojson", guards=[require_role(*MEMBERS)], opt={"device_ok": True}, media_type="application/geo+json")
    async def streets(
        self,
        campaign_id: FromPath[int],
        db_session: DbSession,
        user: CurrentUser,
        request: Request[Any, Any, Any],
        walk_list_id: FromQuery[int | None] = None,
        bbox: FromQuery[str | None] = None,
        buildings: FromQuery[bool] = True,
    ) -> Response[bytes]:
        """Simplified streets and building outlines around a walk list (with its route) or in a bbox
        (buildings only in views up to 0.05 degrees a side, or never with `buildings=false`), as
        GeoJSON; cached; gzip when the client accepts it."""
        body, compressed = await street_layer(db_session, user, campaign_id, walk_list_id, bbox, buildings=buildings)
        headers = {"cache-control": "private, max-age=3600", "vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(compressed, media_type="application/geo+json", headers={**headers, "content-encoding": "gzip"})
        return Response(body, media_type="application/geo+json", headers=headers)
