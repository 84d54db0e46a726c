"""The `e2e` marker (browser tests; they run in `make test`) and the real server and browser they drive."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import (
    ARTIFACTS,
    CANVASS,
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    free_port,
    unavailable,
)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker so `-m e2e` / `-m "not e2e"` select these tests."""
    config.addinivalue_line("markers", "e2e: end-to-end test in a real browser against a real server")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app under uvicorn on a free port, with a migrated SQLite database holding the demo town."""
    if not (ROOT / "server/console/static/vendor/.built").exists():
        unavailable("the console's libraries are not built: run `make console`")
    folder = tmp_path_factory.mktemp("console-e2e")
    env = dict(os.environ, CANVASS_DATABASE_URL=f"sqlite:///{folder / 'canvass.sqlite3'}",
               CANVASS_SECRET_KEY=secrets.token_urlsafe(48), CANVASS_TILE_URL="")
    env.pop("DATABASE_URL", None)
    for args in (["db", "upgrade"], ["demo"]):
        done = subprocess.run([CANVASS, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"canvass {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    port = free_port()
    log = (folder / "server.log").open("w")
    server = subprocess.Popen([CANVASS, "serve", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not become ready:\n{(folder / 'server.log').read_text()}")
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not (Path(CHROMIUM).exists() and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"{CHROMIUM} is missing: install Debian's chromium package (`apt-get install -y chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: `make install-dev`")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
