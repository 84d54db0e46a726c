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
def playwright_and_browser() -> Iterator[tuple[Any, Any]]:
    """Playwright and Debian's Chromium (never a downloaded browser)."""
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
            yield playwright, chromium
        finally:
            chromium.close()


@pytest.fixture
def browser(playwright_and_browser: tuple[Any, Any]) -> Any:
    """The shared headless Chromium."""
    return playwright_and_browser[1]


@pytest.fixture
def playwright(playwright_and_browser: tuple[Any, Any]) -> Any:
    """Playwright itself (for persistent contexts: a browser that is closed and opened again)."""
    return playwright_and_browser[0]


# ------------------------------------------------------------------ helpers


class Phone:
    """One phone: a browser context (its own IndexedDB and service worker) with the app open."""

    def __init__(self, browser: Any, live: Live, name: str, context: Any = None) -> None:
        self.live, self.name, self.browser = live, name, browser
        self.context = context or browser.new_context(**PHONE)
        self.page = self.context.pages[0] if self.context.pages else self.context.new_page()
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
        self.page.wait_for_function("() => window.canvassApp.core.outboxCount === 0 && !window.canvassApp.syncing", timeout=120_000)

    def outbox(self) -> int:
        """Records waiting on this phone (from the engine)."""
        return int(self.page.evaluate("() => window.canvassApp.core.outboxCount"))

    def idb(self) -> dict[str, list[list[Any]]]:
        """Every table of the app's IndexedDB, read straight from the browser."""
        return self.page.evaluate(READ_IDB)

    def wait_worker(self) -> None:
        """Wait until the service worker controls the page (the shell is cached for offline starts)."""
        self.page.wait_for_function("() => Boolean(navigator.serviceWorker.controller)")  # the worker claims the page

    def close(self) -> None:
        """Close the phone's browser context."""
        self.context.close()

    @classmethod
    def persistent(cls, playwright: Any, live: Live, name: str, profile: Path) -> Phone:
        """A phone whose browser keeps its profile on disk: it can be killed and started again."""
        context = playwright.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, **PHONE)
        return cls(None, live, name, context)

    def open_list(self, list_id: int) -> None:
        """Sync, then open a list from My lists."""
        self.page.goto(f"{self.live.base}/app/#/lists")
        self.page.wait_for_selector(f".list-card[data-list-id='{list_id}']")
        self.page.locator(f".list-card[data-list-id='{list_id}'] a").tap()
        self.page.wait_for_selector("ol.doors")


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


TARGETS_AND_LABELS = """() => {
  const problems = [];
  const named = (el) => (el.getAttribute("aria-label") || el.textContent || "").trim() || (el.labels && [...el.labels].some((l) => l.textContent.trim()));
  for (const el of document.querySelectorAll("main button, main a.button, main a.door, main input, main textarea, #status button")) {
    const box = (el.type === "radio" || el.type === "checkbox") ? el.closest("label").getBoundingClientRect() : el.getBoundingClientRect();
    if (box.height < 44 || box.width < 44) problems.push(`${el.outerHTML.slice(0, 80)} is ${Math.round(box.width)}x${Math.round(box.height)}`);
    if (!named(el)) problems.push(`${el.outerHTML.slice(0, 80)} has no label`);
  }
  return problems;
}"""


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

    phone.page.locator("#go-next").tap()
    phone.page.wait_for_selector("#door-address")
    assert phone.page.evaluate(TARGETS_AND_LABELS) == []  # every control labelled, every tap target >= 44 px
    phone.page.locator("a:has-text('Back')").first.tap()
    phone.page.wait_for_selector("ol.doors a.door.next")
    assert phone.page.evaluate(TARGETS_AND_LABELS) == []

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


def _volunteer(browser: Any, live: Live, name: str, doors: int, phone: Phone | None = None) -> tuple[Phone, str, int]:
    """A volunteer who joined with a code and holds a fresh list of `doors` doors (synced)."""
    email = f"{name}-{uuid.uuid4().hex[:6]}@example.org"
    list_id = live.make_list(doors, f"{name} list")
    phone = phone or Phone(browser, live, name)
    phone.join(live.join_code(), email)
    live.assign(list_id, email)
    phone.sync()
    phone.open_list(list_id)
    return phone, email, list_id


def _landed(live: Live, ids: set[str]) -> list[str]:
    """Which of these event ids the server holds (attempts and answers), with repeats if any."""
    rows = _db_rows(live, "SELECT id FROM contact_attempts") + _db_rows(live, "SELECT id FROM answers")
    return sorted(str(r[0]) for r in rows if str(r[0]) in ids)


def test_browser_killed_mid_sync_and_reopened_loses_and_duplicates_nothing(playwright: Any, live: Live, tmp_path: Path) -> None:
    """The server applies a batch whose answer never reaches the phone; the browser dies; on restart all land once."""
    phone = Phone.persistent(playwright, live, "killed", tmp_path / "profile")
    phone, _email, list_id = _volunteer(None, live, "killed", 60, phone)
    phone.context.set_offline(True)
    _record_doors(phone, list_id, 60)  # 100 records
    stored = phone.idb()
    ids = {row[1]["mutation"]["id"] for row in stored["outbox"]}
    phone.page.evaluate("() => window.canvassApp.core.batchSize = 40")  # three pushes
    pushes: list[int] = []

    def lose_second_answer(route: Any) -> None:
        if len(pushes) >= 2:  # the network is gone for good: retries never reach the server
            route.abort("internetdisconnected")
            return
        response = route.fetch()  # the server applies the batch...
        pushes.append(response.status)
        if len(pushes) == 2:
            route.abort("connectionreset")  # ...and the phone never hears of it
        else:
            route.fulfill(response=response)

    phone.page.route("**/api/sync/push", lose_second_answer)
    phone.context.set_offline(False)
    phone.page.locator("#sync-now").tap()
    phone.page.wait_for_function("() => window.canvassApp.core.outboxCount === 60 && !window.canvassApp.syncing", timeout=180_000)
    assert pushes == [200, 200]
    phone.shot("01-mid-sync")
    phone.close()  # the browser is killed with 60 records still queued (40 of them already applied)

    again = Phone.persistent(playwright, live, "killed-again", tmp_path / "profile")
    again.context.set_offline(True)  # look before the app's own sync on start
    again.open()
    assert again.outbox() == 60
    again.context.set_offline(False)
    again.sync()
    assert _landed(live, ids) == sorted(ids)  # each exactly once
    assert again.idb()["outbox"] == []
    assert not again.errors, again.errors
    again.close()


def test_list_reassigned_while_offline_work_lands_and_list_leaves_phone(browser: Any, live: Live) -> None:
    """Work recorded before the list was taken away is pushed; the next pull removes the list from the phone."""
    phone, _email, list_id = _volunteer(browser, live, "reassigned", 8)
    phone.context.set_offline(True)
    _record_doors(phone, list_id, 5)
    ids = {row[1]["mutation"]["id"] for row in phone.idb()["outbox"]}
    live.assign(list_id, "canvasser2@demo.canvass")  # the organiser gives the list to someone else
    phone.context.set_offline(False)
    phone.sync()
    assert _landed(live, ids) == sorted(ids)
    phone.page.goto(f"{live.base}/app/#/lists")
    phone.page.wait_for_selector("h1:has-text('My lists')")
    assert phone.page.locator(f".list-card[data-list-id='{list_id}']").count() == 0
    entities = [row[0] for row in phone.idb()["entities"]]
    assert f"walk_list:{list_id}" not in entities and not [k for k in entities if k.startswith("stop:")]
    assert not phone.errors, phone.errors
    phone.close()


def test_erased_person_leaves_nothing_in_indexeddb(browser: Any, live: Live) -> None:
    """An organiser erases a person the phone holds (with a queued record about them): after sync, nothing of them remains."""
    from server.sync.erasure import erase_person

    phone, _email, list_id = _volunteer(browser, live, "erasure", 4)
    stored = phone.idb()
    person = next(row[1]["data"] for row in stored["entities"] if row[0].startswith("person:"))
    person_id, address_id = int(person["id"]), int(person["address_id"])
    names = [n for n in (person["surname"], person["forenames"]) if n]
    phone.context.set_offline(True)
    phone.page.goto(f"{live.base}/app/#/door/{list_id}/{address_id}")
    phone.page.locator(f"input[name=person][value='{person_id}']").check()
    phone.page.locator("button[data-outcome='spoke']").tap()
    phone.page.wait_for_selector("#last-record")
    assert any(row[1]["mutation"].get("person_id") == person_id for row in phone.idb()["outbox"])

    async def erase() -> None:
        from server.db.session import create_engine_for, create_sessionmaker
        from server.settings import normalise_database_url

        engine = create_engine_for(normalise_database_url(live.database_url))
        try:
            async with create_sessionmaker(engine)() as session:
                await erase_person(session, live.campaign_id, person_id, None)
                await session.commit()
        finally:
            await engine.dispose()

    run_async(erase())
    phone.context.set_offline(False)
    phone.sync()
    dump = phone.idb()
    for _key, value in dump["entities"]:
        data = value["data"]
        same = [data.get(k) for k in ("surname", "forenames", "elector_number")] == [person.get(k) for k in ("surname", "forenames", "elector_number")]
        assert not same, f"{' '.join(names)} is still in IndexedDB"
    for table, rows in dump.items():
        for key, value in rows:
            if table == "erased":
                continue
            assert key != f"person:{person_id}", (table, key)
            if not isinstance(value, dict):
                continue
            body = value.get("data") or value.get("mutation") or value.get("edit") or value
            assert not (isinstance(body, dict) and body.get("person_id") == person_id), (table, key, value)
    assert [k for k, _ in dump["erased"]] == [f"person:{person_id}"] or f"person:{person_id}" in [k for k, _ in dump["erased"]]
    phone.close()


def test_device_revoked_then_signed_in_again_queued_records_all_land(browser: Any, live: Live) -> None:
    """The token stops working with records queued; the volunteer signs in again on the same install; all land."""
    phone, email, list_id = _volunteer(browser, live, "resignin", 10)
    phone.context.set_offline(True)
    _record_doors(phone, list_id, 6)
    ids = {row[1]["mutation"]["id"] for row in phone.idb()["outbox"]}
    device_id = phone.page.evaluate("() => window.canvassApp.core.device.device_id")
    revoked = live.api("DELETE", f"/api/campaigns/{live.campaign_id}/devices/{device_id}")
    assert revoked.status_code == 204, revoked.text
    phone.context.set_offline(False)
    phone.page.locator("#sync-now").tap()
    phone.page.wait_for_selector("#auth-banner")
    assert phone.outbox() == len(ids)
    phone.page.locator("#auth-banner a").tap()
    phone.page.get_by_label("Email").fill(email)
    phone.page.get_by_label("Password").fill("volunteer-pass")
    phone.page.get_by_role("button", name="Sign in").tap()
    phone.page.wait_for_selector("h1:has-text('My lists')")
    phone.sync()
    assert _landed(live, ids) == sorted(ids)
    assert phone.page.evaluate("() => window.canvassApp.core.rejections.size") == 0
    phone.close()


def test_two_phones_edit_one_phone_number_offline_converge_and_conflict_is_reviewable(browser: Any, live: Live) -> None:
    """Both phones end with the same number; the organiser's conflict list holds the losing edit."""
    email = f"pair-{uuid.uuid4().hex[:6]}@example.org"
    list_id = live.make_list(3, "pair list")
    person_id, address_id = _db_rows(
        live, "SELECT p.id, p.address_id FROM people p JOIN walk_list_stops s ON s.address_id = p.address_id WHERE s.walk_list_id = :l ORDER BY p.id",
        l=list_id)[0]
    _db_rows_write(live, "UPDATE people SET contact_consent = 'yes' WHERE id = :p", p=person_id)  # consent recorded earlier
    first = Phone(browser, live, "pair-a")
    first.join(live.join_code(), email)
    live.assign(list_id, email)
    first.sync()
    second = Phone(browser, live, "pair-b")
    second.sign_in(email, "volunteer-pass")
    for phone in (first, second):
        phone.sync()
    numbers = {"pair-a": "07700 900001", "pair-b": "07700 900002"}
    for phone in (first, second):
        phone.context.set_offline(True)
        phone.page.goto(f"{live.base}/app/#/door/{list_id}/{address_id}")
        phone.page.locator(f"input[name=person][value='{person_id}']").check()
        phone.page.get_by_label("Phone").fill(numbers[phone.name])
        phone.page.locator("#save-contact").tap()
        phone.page.wait_for_function("() => window.canvassApp.core.outboxCount === 1")
    for phone in (first, second, first):
        phone.context.set_offline(False)
        phone.sync()
    shown = [p.page.evaluate(f"() => window.canvassApp.core.get('person', {person_id}).phone") for p in (first, second)]
    conflicts = live.api("GET", f"/api/campaigns/{live.campaign_id}/conflicts").json()
    assert shown[0] == shown[1] == numbers["pair-b"], (conflicts, [p.idb()["rejections"] for p in (first, second)])  # the later edit wins
    mine = [c for c in conflicts if c["entity"] == "person" and c["entity_id"] == person_id and c["field"] == "phone"]
    assert [(c["losing_value"], c["winning_value"]) for c in mine] == [(numbers["pair-a"], numbers["pair-b"])]
    first.page.reload()  # the door screen drawn afresh shows the converged value
    first.page.wait_for_selector("html[data-ready='1']")
    first.page.locator(f"input[name=person][value='{person_id}']").check()
    assert first.page.get_by_label("Phone").input_value() == numbers["pair-b"]
    for phone in (first, second):
        assert not phone.errors, phone.errors
        phone.close()


def _db_rows_write(live: Live, sql: str, **params: Any) -> None:
    """Arrange state in the server's database directly (what an organiser tool would have set)."""
    from sqlalchemy import text

    from server.db.session import create_engine_for
    from server.settings import normalise_database_url

    async def run() -> None:
        engine = create_engine_for(normalise_database_url(live.database_url))
        try:
            async with engine.begin() as conn:
                await conn.execute(text(sql), params)
        finally:
            await engine.dispose()

    run_async(run())


def test_upgrade_required_keeps_the_queue_until_the_app_is_reloaded(browser: Any, live: Live) -> None:
    """A 426 from the server shows the banner and keeps the records; after "Reload the app" they are sent."""
    phone, _email, list_id = _volunteer(browser, live, "upgrade", 3)
    phone.context.set_offline(True)
    _record_doors(phone, list_id, 2)
    queued = phone.outbox()

    def old_app(route: Any) -> None:  # this copy of the app speaks a protocol version the server dropped
        route.continue_(headers={**route.request.headers, "x-canvass-protocol": "99"})

    phone.page.route("**/api/sync/**", old_app)
    phone.context.set_offline(False)
    phone.page.locator("#sync-now").tap()
    phone.page.wait_for_selector("#upgrade-banner")
    assert "needs updating" in phone.page.locator("#upgrade-banner").inner_text()
    assert phone.outbox() == queued
    phone.shot("01-upgrade-required")
    phone.page.unroute("**/api/sync/**")  # the new version of the app is deployed
    phone.page.locator("#upgrade-banner button").tap()  # Reload the app
    phone.page.wait_for_selector("html[data-ready='1']")
    phone.page.wait_for_function("() => window.canvassApp.core.outboxCount === 0 && !window.canvassApp.core.upgradeRequired")
    assert phone.page.locator("#upgrade-banner").count() == 0
    phone.close()


def test_undo_of_a_sent_record_voids_it_on_the_server_and_in_results(browser: Any, live: Live) -> None:
    """The list map shows streets and buildings. A knock already synced is undone from the door screen: a correcting void_event lands, the
    attempt leaves the server's events and the list's results, and the phone no longer shows it."""
    phone, _email, list_id = _volunteer(browser, live, "undo", 3)
    page = phone.page
    # no tile server: the map draws our own layer, streets and the demo town's building outlines
    page.wait_for_selector("#map path.building", state="attached")
    page.wait_for_selector("#map path.street", state="attached")
    phone.shot("undo-01-map-buildings")
    page.locator("#go-next").tap()
    page.wait_for_selector("#door-address")
    page.locator("button[data-outcome='refused']").tap()
    page.wait_for_selector("#last-record")
    phone.sync()
    [(attempt_id,)] = _db_rows(live, "SELECT id FROM contact_attempts WHERE walk_list_id = :l", l=list_id)
    page.reload()  # the door screen as it is after the sync
    page.wait_for_selector("html[data-ready='1']")
    assert "(sent)" in page.locator("#last-record").inner_text()
    page.locator("#undo").tap()
    page.wait_for_selector("#last-record", state="detached")  # gone from the phone at once
    assert phone.outbox() == 1 and phone.idb()["outbox"][0][1]["mutation"]["op"] == "void_event"
    phone.sync()
    assert _db_rows(live, "SELECT id FROM contact_attempts WHERE walk_list_id = :l", l=list_id) == []
    assert [str(r[0]) for r in _db_rows(live, "SELECT event_id FROM voided_events")] == [str(attempt_id)]
    progress = live.api("GET", f"/api/campaigns/{live.campaign_id}/results/lists/{list_id}/progress")
    assert progress.status_code == 200, progress.text
    assert progress.json()["walk_list"]["attempts"] == 0, progress.json()
    assert page.locator("#last-record").count() == 0
    assert not phone.errors, phone.errors
    phone.close()


PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5f2f6a60000000049454e44ae426082"
)


@pytest.fixture
def tile_server() -> Iterator[tuple[str, list[str]]]:
    """A tile server on loopback (any /z/x/y.png is a 1x1 PNG, CORS allowed): its URL template and
    request log (paths; a CORS request, the worker fetching ahead, is logged as "cors:" + path,
    the map's own image requests as the plain path)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    log: list[str] = []

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            log.append(("cors:" if self.headers.get("Origin") else "") + self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(PNG_1X1)))
            self.end_headers()
            self.wfile.write(PNG_1X1)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{{z}}/{{x}}/{{y}}.png", log
    finally:
        server.shutdown()


LIST_TILE_URLS = """async () => {
  const m = await import("/app/static/js/tiles.js");
  return m.tileUrls(window.canvassApp.config.tile_url, m.listBounds(window.canvassApp.core));
}"""
CACHED_LIST_TILES = """async () => (await (await caches.open("canvass-tiles-lists")).keys()).map((r) => r.url)"""


def test_tiles_of_assigned_lists_are_cached_for_offline_use(browser: Any, tile_server: tuple[str, list[str]], tmp_path: Path) -> None:
    """With CANVASS_TILE_URL set, the service worker fetches the tiles covering the phone's lists
    (zooms 14-18, each once, bounded), the map shows them offline, and they leave with the list."""
    template, log = tile_server
    with live_server(tmp_path, "sqlite", extra_env={"CANVASS_TILE_URL": template}) as live:
        phone = Phone(browser, live, "tiles")
        phone.open("/app/")
        phone.wait_worker()
        phone, _email, list_id = _volunteer(browser, live, "tiles", 4, phone=phone)
        page = phone.page
        page.wait_for_function("() => window.canvassApp.tiles !== null && window.canvassApp.tiles.cached > 0", timeout=120_000)
        wanted = page.evaluate(LIST_TILE_URLS)
        assert 10 < len(wanted) <= 2000
        assert {int(u.split("/")[3]) for u in wanted} == {14, 15, 16, 17, 18}
        assert page.evaluate("() => window.canvassApp.tiles") == {"cached": len(wanted), "failed": 0}
        assert sorted(page.evaluate(CACHED_LIST_TILES)) == sorted(wanted)
        def fetched_ahead() -> list[str]:
            return [p for p in log if p.startswith("cors:")]

        prefetched = fetched_ahead()
        assert sorted(prefetched) == sorted({"cors:/" + u.split("/", 3)[3] for u in wanted})  # each fetched once
        page.evaluate("() => { window.canvassApp.tiles = null; }")
        phone.sync()  # again: the worker answers, and fetches nothing it holds
        page.wait_for_function("() => window.canvassApp.tiles !== null", timeout=60_000)
        assert page.evaluate("() => window.canvassApp.tiles") == {"cached": len(wanted), "failed": 0}
        assert fetched_ahead() == prefetched

        all_loaded = "() => document.querySelectorAll('#map img.leaflet-tile:not(.leaflet-tile-loaded)').length === 0"
        page.wait_for_function(all_loaded)  # online, the map has seen its tiles (the edge ones are kept as seen)
        phone.context.set_offline(True)
        before = len(log)
        page.reload()
        page.wait_for_selector("html[data-ready='1']")
        page.wait_for_selector("#map img.leaflet-tile-loaded", state="attached")
        shown = page.evaluate("() => [...document.querySelectorAll('#map img.leaflet-tile-loaded')].map((i) => i.src)")
        assert shown and set(shown) & set(wanted)  # the list's tiles (and any seen at its edge) from the caches
        page.wait_for_function(all_loaded)
        assert len(log) == before  # offline: every tile came from the phone's cache
        phone.shot("tiles-offline-map")

        phone.context.set_offline(False)
        live.assign(list_id, "canvasser2@demo.canvass")  # the list leaves the phone, and its tiles with it
        phone.sync()
        page.wait_for_function("() => window.canvassApp.tiles.cached === 0", timeout=60_000)
        assert page.evaluate(CACHED_LIST_TILES) == []
        assert not phone.errors, phone.errors
        phone.close()
