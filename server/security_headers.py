"""Security headers on every response, and a Content-Security-Policy on every HTML page, set in one place.

The canvasser app's pages (`/app`) may ask for the position (Permissions-Policy `geolocation=(self)`;
everything else keeps it off). The console (`/console`) gets a strict policy: scripts, styles, fonts and API calls from our
own origin only (no inline script, no `eval`), images from our origin, `data:` URLs and the
map tile host when `CANVASS_TILE_URL` is set; no plugins, no `<base>`, no framing. The
console builds its DOM from text nodes and sets styles through the CSSOM, so it needs no
'unsafe-inline' at all. The API documentation pages under `/schema` are Litestar's
renderers, which load Swagger UI / Scalar from a CDN and start them with an inline script:
they get a looser policy of their own (they show no personal data, only the API description).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from server.settings import Settings

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": "geolocation=(), camera=(), microphone=()",
}

APP_PATH_PREFIX = "/app"
APP_PERMISSIONS = "geolocation=(self), camera=(), microphone=()"
"""The canvasser app's pages may ask for the position (the list map shows it; never sent anywhere)."""

DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_PATH_PREFIX = "/schema"


def tile_source(tile_url: str) -> str | None:
    """The CSP source for a Leaflet tile URL template (`https://{s}.tile.example.org/...` -> `https://*.tile.example.org`)."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    labels = parts.netloc.split(".")
    if labels[0].startswith("{") and labels[0].endswith("}"):
        labels[0] = "*"
    host = ".".join(labels)
    return None if "{" in host or "}" in host else f"{parts.scheme}://{host}"


def console_policy(settings: Settings) -> str:
    """The console's Content-Security-Policy: self only, no inline script, the tile host for images when configured."""
    images = " ".join(filter(None, ["'self'", "data:", tile_source(settings.tile_url)]))
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src {images}",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def docs_policy() -> str:
    """The API documentation pages' policy: Litestar's renderers need their CDN and an inline start-up script."""
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'unsafe-inline' {DOCS_CDN}",
        f"style-src 'self' 'unsafe-inline' {DOCS_CDN} https://fonts.googleapis.com",
        f"img-src 'self' data: {DOCS_CDN}",
        "font-src 'self' data: https://fonts.gstatic.com",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])


def security_headers_hook(settings: Settings) -> Callable[[Any, Any], Awaitable[None]]:
    """A `before_send` hook adding SECURITY_HEADERS to every response and the CSP to HTML responses."""
    fixed = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
    app_fixed = [(name.encode(), (APP_PERMISSIONS if name == "permissions-policy" else value).encode())
                 for name, value in SECURITY_HEADERS.items()]
    console_csp = console_policy(settings).encode()
    docs_csp = docs_policy().encode()

    async def add_security_headers(message: Any, scope: Any) -> None:
        if message["type"] != "http.response.start":
            return
        headers = message.setdefault("headers", [])
        content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
        path = str(scope.get("path", ""))
        in_app = path == APP_PATH_PREFIX or path.startswith(APP_PATH_PREFIX + "/")
        headers.extend(app_fixed if in_app else fixed)
        # API answers carry tokens or personal data (or errors about them): no browser or proxy may keep a copy.
        if str(scope.get("path", "")).startswith("/api/") and not any(name.lower() == b"cache-control" for name, _ in headers):
            headers.append((b"cache-control", b"no-store"))
        if content_type.startswith(b"text/html"):
            docs = str(scope.get("path", "")).startswith(DOCS_PATH_PREFIX)
            headers.append((b"content-security-policy", docs_csp if docs else console_csp))

    return add_security_headers
