"""The canvasser app end to end: Debian's Chromium as a 390x844 touch phone against the real server.

A volunteer joins with a join code, gets a list, knocks 60 doors offline, reloads offline, syncs;
the browser is closed in the middle of a sync; a list is reassigned while offline; a person is
erased; the device is revoked and the volunteer signs in again with records queued; two phones
edit the same phone number offline. Each test reads the phone's IndexedDB and the server's
database or API to check that nothing was lost or duplicated. Screenshots go to
`test-artifacts/phone/` (git-ignored).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.phone.live import ROOT, Live, live_server, run_async

ARTIFACTS = ROOT / "test-artifacts" / "phone"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

READ_IDB = """async () => {
  const open = indexedDB.open("canvass-phone");
  const db = await new Promise((ok, bad) => { open.onsuccess = () => ok(open.result); open.onerror = () => bad(open.error); });
  const out = {};
  for (const name of db.objectStoreNames) {
    const tx = db.transaction(name, "readonly");
    const store = tx.objectStore(name);
    const keys = await new Promise((ok) => { const r = store.getAllKeys(); r.onsuccess = () => ok(r.result); });
    const values = await new Promise((ok) => { const r = store.getAll(); r.onsuccess = () => ok(r.result); });
    out[name] = keys.map((k, i) => [k, values[i]]);
  }
  db.close();
  return out;
}"""


def _must_run() -> bool:
    return os.environ.get("CANVASS_REQUIRE_REAL_DATA") == "1" or os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if _must_run():
        pytest.fail(f"{reason} (required because CANVASS_REQUIRE_REAL_DATA=1 or CI=true)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The real app on a migrated SQLite database holding the demo town."""
    if not (ROOT / "server/phone/static/vendor/.built").exists():
        _unavailable("the canvasser app's libraries are not built: run `make phone`")
    with live_server(tmp_path_factory.mktemp("phone-e2e")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not (Path(CHROMIUM).exists() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"{CHROMIUM} is missing: install Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: `make install-dev`")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


# ------------------------------------------------------------------ helpers


class Phone:
    """One phone: a browser context (its own IndexedDB and service worker) with the app open."""

    def __init__(self, browser: Any, live: Live, name: str, storage: Path | None = None) -> None:
        self.live, self.name, self.browser = live, name, browser
        self.context = browser.new_context(**PHONE, storage_state=str(storage) if storage else None)
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def open(self, path: str = "/app/") -> None:
        """Load the app and wait until the engine has read its store."""
        self.page.goto(f"{self.live.base}{path}")
        self.page.wait_for_selector("html[data-ready='1']")

    def shot(self, name: str) -> None:
        """A screenshot in test-artifacts/phone/."""
        self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{name}.png"))

    def join(self, code: str, email: str, display_name: str = "Val Volunteer", password: str = "volunteer-pass") -> None:
        """Open the join link, create an account, and land on My lists."""
        self.open(f"/app/join?code={code}")
        self.page.get_by_label("Your name").fill(display_name)
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password (8 characters or more)").fill(password)
        self.page.get_by_role("button", name="Create account and start").tap()
        self.page.wait_for_selector("h1:has-text('My lists')")

    def sign_in(self, email: str, password: str) -> None:
        """Open the join screen's "I already have an account" and sign in."""
        self.open("/app/#/join")
        self.page.get_by_role("button", name="I already have an account").tap()
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").tap()
        self.page.wait_for_selector("h1:has-text('My lists')")

    def sync(self) -> None:
        """Tap Sync now and wait until nothing waits in the outbox and the sync finished."""
        self.page.locator("#sync-now:not([disabled])").tap()
        self.page.wait_for_function("window.canvassApp.core.outboxCount === 0 && !window.canvassApp.syncing", timeout=120_000)

    def outbox(self) -> int:
        """Records waiting on this phone (from the engine)."""
        return int(self.page.evaluate("window.canvassApp.core.outboxCount"))

    def idb(self) -> dict[str, list[list[Any]]]:
        """Every table of the app's IndexedDB, read straight from the browser."""
        return self.page.evaluate(READ_IDB)

    def wait_worker(self) -> None:
        """Wait until the service worker controls the page (the shell is cached for offline starts)."""
        self.page.wait_for_function("Boolean(navigator.serviceWorker.controller)")  # the worker claims the page

    def close(self) -> None:
        """Close the phone's browser context."""
        self.context.close()


def _db_rows(live: Live, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows from the server's database (to check exactly what landed)."""
    from sqlalchemy import text

    from server.db.session import create_engine_for
    from server.settings import normalise_database_url

    async def run() -> list[tuple[Any, ...]]:
        engine = create_engine_for(normalise_database_url(live.database_url))
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]
        finally:
            await engine.dispose()

    return run_async(run())


def _record_doors(phone: Phone, list_id: int, count: int) -> dict[str, int]:
    """Knock `count` doors from the list's next door: 2 of 3 "spoke" with a vote, 1 of 3 "not in"."""
    page = phone.page
    page.locator("#go-next").tap()
    expected = {"attempts": 0, "answers": 0}
    for n in range(count):
        page.wait_for_selector("#door-address")
        if n % 3 == 2:
            page.locator("#not-in").tap()  # records and goes on to the next door: 2 taps a door
            expected["attempts"] += 1
            continue
        page.locator("button[data-outcome='spoke']").tap()
        page.wait_for_selector("#last-record")
        page.locator(".question[data-key='voting_intention'] button[data-value='Red']").tap()
        page.wait_for_selector(".question[data-key='voting_intention'] button.chosen")
        expected["attempts"] += 1
        expected["answers"] += 1
        page.locator("#next-door").tap()
    return expected


# ------------------------------------------------------------------ the tests


def test_volunteer_joins_knocks_60_doors_offline_reloads_and_syncs(browser: Any, live: Live) -> None:
    """Join by code; 60 doors offline; reload offline (all kept); online sync lands each record exactly once."""
    code = live.join_code()
    email = f"val-{uuid.uuid4().hex[:6]}@example.org"
    list_id = live.make_list(64, "High Street north")
    phone = Phone(browser, live, "sixty")
    phone.join(code, email)
    phone.shot("01-joined")
    live.assign(list_id, email)
    phone.sync()
    phone.page.wait_for_selector(f".list-card[data-list-id='{list_id}']")
    assert "0 of 64 doors done" in phone.page.locator(f".list-card[data-list-id='{list_id}']").inner_text()
    phone.wait_worker()
    phone.shot("02-my-lists")

    phone.page.locator(f".list-card[data-list-id='{list_id}'] a").tap()
    phone.page.wait_for_selector("ol.doors a.door.next")
    phone.page.wait_for_selector("#map .stop-icon.next")
    phone.shot("03-list-map")

    phone.context.set_offline(True)
    expected = _record_doors(phone, list_id, 60)
    phone.shot("04-door-offline")
    queued = expected["attempts"] + expected["answers"]
    assert phone.outbox() == queued

    phone.page.reload()  # offline: the service worker serves the shell, IndexedDB the records
    phone.page.wait_for_selector("html[data-ready='1']")
    phone.page.goto(f"{live.base}/app/#/list/{list_id}")
    phone.page.wait_for_selector(".doors-progress")
    assert "60 of 64 doors done" in phone.page.locator(".doors-progress").first.inner_text()
    assert phone.outbox() == queued
    assert phone.page.locator("#outbox-count").get_attribute("data-count") == str(queued)
    phone.shot("05-reloaded-offline")
    stored = phone.idb()
    queued_ids = {row[1]["mutation"]["id"] for row in stored["outbox"]}
    attempt_ids = {row[1]["mutation"]["id"] for row in stored["outbox"] if row[1]["mutation"]["op"] == "record_contact_attempt"}
    answer_ids = queued_ids - attempt_ids
    assert len(attempt_ids) == 60 and len(answer_ids) == expected["answers"]

    phone.context.set_offline(False)
    phone.sync()
    phone.shot("06-synced")
    attempts = _db_rows(live, "SELECT id FROM contact_attempts WHERE walk_list_id = :l", l=list_id)
    answers = _db_rows(live, "SELECT id, value FROM answers WHERE walk_list_id = :l", l=list_id)
    assert sorted(str(r[0]) for r in attempts) == sorted(attempt_ids)
    assert sorted(str(r[0]) for r in answers) == sorted(answer_ids)
    assert all(json.loads(r[1]) == "Red" if isinstance(r[1], str) and r[1].startswith('"') else r[1] == "Red" for r in answers)
    progress = live.api("GET", f"/api/campaigns/{live.campaign_id}/results/lists/{list_id}/progress")
    assert progress.status_code == 200, progress.text
    assert not phone.errors, phone.errors
    phone.close()
