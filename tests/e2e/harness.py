"""What the browser tests share: Debian's Chromium, the demo server's sign-in, screenshots and error watching."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "canvass-demo"
CANVASS = str(Path(sys.executable).with_name("canvass"))


def must_run() -> bool:
    """True when a missing browser or library must fail the run (CI, or real data required)."""
    return os.environ.get("CANVASS_REQUIRE_REAL_DATA") == "1" or os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip the test, or fail it where browser tests must run."""
    if must_run():
        pytest.fail(f"{reason} (required because CANVASS_REQUIRE_REAL_DATA=1 or CI=true)")
    pytest.skip(reason)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shot(page: Any, name: str) -> None:
    """Save a full-page screenshot under test-artifacts/e2e/."""
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def access_token(base: str, email: str, password: str = PASSWORD) -> str:
    """An access token for a password sign-in (through the JSON API, as a phone would)."""
    response = httpx.post(f"{base}/api/auth/login", json={"email": email, "password": password}, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def watch_errors(page: Any, errors: list[str]) -> None:
    """Collect the page's uncaught exceptions and console errors into `errors`."""
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)


def sign_in(page: Any, base: str, email: str) -> None:
    """Sign in through the console's form and wait for the session bar."""
    page.goto(f"{base}/console")
    page.locator("#signin").get_by_label("Email").fill(email)
    page.locator("#signin").get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#session:not([hidden])")


def run_async(coroutine: Any) -> Any:
    """Run a coroutine on a fresh event loop in its own thread (Playwright's sync API owns this one)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=300)
    if "error" in box:
        raise box["error"]
    return box.get("value")


@asynccontextmanager
async def registered_phone(base: str, token: str, campaign_id: int, name: str = "e2e phone") -> AsyncIterator[Any]:
    """A phone (the reference SyncClient) registered as a device of the user whose `token` this is, over HTTP."""
    from sync.client import SyncClient
    from sync.clock import HybridClock

    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        registered = await http.post(f"/api/campaigns/{campaign_id}/devices", json={"name": name},
                                     headers={"authorization": f"Bearer {token}"})
        assert registered.status_code == 201, registered.text
        device = registered.json()

        async def transport(method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
            response = await http.request(method, path, content=body or None, headers=headers)
            return response.status_code, response.content

        yield SyncClient(device["node_id"], device["token"], transport, HybridClock(device["node_id"]))


async def phone_canvasses(
    base: str, token: str, campaign_id: int, walk_list_id: int, knocks: int, before_push: Callable[[Any, list[int]], None] | None = None
) -> dict[str, Any]:
    """A canvasser's phone (the reference SyncClient): register, pull (the assigned list downloads), knock `knocks` doors, push.

    `before_push(phone, address_ids)` may record more on the phone (answers, edits) before the push.
    """
    async with registered_phone(base, token, campaign_id) as phone:
        pulled = await phone.pull(retries=2)
        assert pulled.ok, pulled
        assert str(walk_list_id) in phone.ids("walk_list"), "the assigned list did not reach the phone"
        stops = [stop for stop in (phone.get("stop", s) for s in phone.ids("stop")) if stop and stop["walk_list_id"] == walk_list_id]
        address_ids = [int(stop["address_id"]) for stop in sorted(stops, key=lambda stop: stop["position"])]
        assert len(address_ids) >= knocks, f"the phone holds {len(address_ids)} stops"
        for n, address_id in enumerate(address_ids[:knocks]):
            phone.record_contact(address_id, "spoke" if n % 3 != 2 else "not_home", walk_list_id=walk_list_id)
            if n % 3 != 2:
                phone.record_answer(address_id, "voting_intention", "Red")
        if before_push is not None:
            before_push(phone, address_ids[:knocks])
        pushed = await phone.push(retries=2)
        assert pushed.ok, pushed
        assert not phone.outbox and not phone.rejections, (phone.outbox, phone.rejections)
        return {"via": "sync", "addresses": address_ids[:knocks]}
