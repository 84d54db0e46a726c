"""The organiser and lead web console, served by the app itself (no separate server)."""

from __future__ import annotations

from litestar import Controller, MediaType, get
from litestar.response import Redirect

CONSOLE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Canvass console</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
a{color:#0b5cad}</style></head>
<body><main><h1>Canvass</h1>
<p>The organiser and lead console is being built. Meanwhile the whole API is documented and can be tried at
<a href="/schema">/schema</a> (OpenAPI 3.1: <a href="/schema/openapi.json">openapi.json</a>).</p>
<ul><li><a href="/health">/health</a> (liveness)</li><li><a href="/ready">/ready</a> (database and migrations)</li></ul>
</main></body></html>"""


class ConsoleController(Controller):
    """Static console pages."""

    path = ""
    include_in_schema = False

    @get("/", opt={"exclude_from_auth": True})
    async def root(self) -> Redirect:
        """Send browsers to the console."""
        return Redirect("/console")

    @get("/console", media_type=MediaType.HTML, opt={"exclude_from_auth": True})
    async def console(self) -> str:
        """The console's entry page."""
        return CONSOLE_HTML
