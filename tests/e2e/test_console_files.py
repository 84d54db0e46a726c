"""The console's page, static files and public config, through the real app (no browser needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.settings import Settings

VENDOR = Path(__file__).resolve().parents[2] / "server/console/static/vendor"


async def test_console_page_and_scripts_are_served(client: AsyncTestClient[Litestar]) -> None:
    """`/console` is the single page; its scripts and styles come from /static with the right types."""
    page = await client.get("/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/app.js">' in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    script = await client.get("/static/js/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    style = await client.get("/static/console.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("path", ["/static/../controllers.py", "/static/%2e%2e/controllers.py", "/static/..%2fcontrollers.py",
                                  "/static/nothing-here.js", "/static/"])
async def test_static_files_refuse_paths_outside_the_folder(client: AsyncTestClient[Litestar], path: str) -> None:
    """Nothing outside server/console/static/ is reachable, and misses are problem+json 404s."""
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_console_config_is_public(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    """The page learns the tile URL before sign-in (empty by default: our own vector layers only)."""
    response = await client.get("/console/config.json")
    assert response.status_code == 200
    body = response.json()
    assert body["tile_url"] == settings.tile_url
    assert bool(body["tile_attribution"]) == bool(settings.tile_url)
    assert body["vendor_built"] == (VENDOR / "leaflet" / "leaflet.js").is_file()
