"""Benchmark the canvasser app in Debian's headless Chromium as a 390x844 touch phone.

Run: `python -m bench.app [--runs 5]`. Starts the real server on a SQLite file with the demo
town (tests/phone/live.py), signs the demo canvasser in through the app, then measures:

- app_shell_bytes_gzip: every file the service worker precaches to start offline (page,
  manifest, our modules and styles, idb, Leaflet, icons) plus the worker, each gzipped
  (level 6, what a server or proxy would send); map tiles and API data excluded;
- cold_start_offline_ms: a new tab, network off, CPU slowed 4x (CDP
  Emulation.setCPUThrottlingRate), from navigation start to the first door of a 70-door list
  drawn (median of --runs);
- record_door_p95_ms: a tap on an outcome button until the record is durable in IndexedDB's
  outbox (the engine's promise resolves after the transaction commits), 100 doors, 95th percentile;
- sync_500_records_ms: 500 queued records pushed and acknowledged on loopback (push only,
  5 batches of 100; median of --runs);
- indexeddb_bytes_60_doors: the JSON size of everything in the app's IndexedDB after joining,
  downloading a 70-door list (addresses, people, survey) and recording 60 doors with answers.

Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.phone.live import PASSWORD, Live, live_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}

IDB_BYTES = """async () => {
  const open = indexedDB.open("canvass-phone");
  const db = await new Promise((ok, bad) => { open.onsuccess = () => ok(open.result); open.onerror = () => bad(open.error); });
  let bytes = 0;
  for (const name of db.objectStoreNames) {
    const store = db.transaction(name, "readonly").objectStore(name);
    const keys = await new Promise((ok) => { const r = store.getAllKeys(); r.onsuccess = () => ok(r.result); });
    const values = await new Promise((ok) => { const r = store.getAll(); r.onsuccess = () => ok(r.result); });
    bytes += new TextEncoder().encode(JSON.stringify(keys) + JSON.stringify(values)).length;
  }
  db.close();
  return bytes;
}"""

RECORD_TIMES = """async ([listId, count]) => {
  const core = window.canvassApp.core;
  const stops = core.stopsOf(listId);
  const times = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await core.recordContact(stops[i % stops.length].address_id, "not_home", { walkListId: listId });
    times.push(performance.now() - started);
  }
  return times;
}"""

PUSH_500 = """async ([listId]) => {
  const core = window.canvassApp.core;
  const stops = core.stopsOf(listId);
  for (let i = 0; i < 500; i++) await core.recordContact(stops[i % stops.length].address_id, "not_home", { walkListId: listId });
  const started = performance.now();
  const pushed = await core.push();
  const elapsed = performance.now() - started;
  if (!pushed.ok || core.outboxCount !== 0) throw new Error("push failed: " + core.lastError);
  return elapsed;
}"""


def say(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


def shell_bytes_gzip(base: str) -> int:
    """Gzipped bytes of the worker plus every file it precaches."""
    worker = httpx.get(f"{base}/app/sw.js").text
    urls = json.loads(worker.split("const SHELL = ", 1)[1].split(";\n", 1)[0])
    total = len(gzip.compress(worker.encode(), 6))
    for url in urls:
        response = httpx.get(f"{base}{url}", follow_redirects=True)
        response.raise_for_status()
        total += len(gzip.compress(response.content, 6))
    return total


def sign_in_and_sync(page: Any, live: Live, list_id: int) -> None:
    """The demo canvasser signs in through the app and downloads the list; the worker takes control."""
    page.goto(f"{live.base}/app/#/join")
    page.wait_for_selector("html[data-ready='1']")
    page.get_by_role("button", name="I already have an account").tap()
    page.get_by_label("Email").fill("canvasser@demo.canvass")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").tap()
    page.wait_for_selector(f".list-card[data-list-id='{list_id}']", timeout=120_000)
    page.wait_for_function("Boolean(navigator.serviceWorker.controller)")


def record_60_doors(page: Any, live: Live, list_id: int) -> None:
    """Knock 60 doors through the screens: 2 of 3 spoke with a vote, 1 of 3 not in."""
    page.goto(f"{live.base}/app/#/list/{list_id}")
    page.locator("#go-next").tap()
    for n in range(60):
        page.wait_for_selector("#door-address")
        if n % 3 == 2:
            page.locator("#not-in").tap()
            continue
        page.locator("button[data-outcome='spoke']").tap()
        page.wait_for_selector("#last-record")
        page.locator(".question[data-key='voting_intention'] button[data-value='Red']").tap()
        page.wait_for_selector(".question[data-key='voting_intention'] button.chosen")
        page.locator("#next-door").tap()


def cold_start(context: Any, live: Live, list_id: int) -> float:
    """A fresh tab with no network and a 4x slower CPU: ms from navigation start to the first door drawn."""
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
    page.goto(f"{live.base}/app/#/list/{list_id}")
    page.wait_for_selector("ol.doors a.door", timeout=60_000)
    elapsed = float(page.evaluate("performance.now()"))
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    page.close()
    return elapsed


def run(runs: int) -> dict[str, Any]:
    """Start the server, drive the app, return the figures."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder, live_server(Path(folder)) as live, sync_playwright() as playwright:
        list_id = live.make_list(70, "Bench list")
        live.assign(list_id, "canvasser@demo.canvass")
        say(f"server {live.base}, list {list_id}")
        figures: dict[str, Any] = {"app_shell_bytes_gzip": shell_bytes_gzip(live.base)}
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(**PHONE)
        page = context.new_page()
        page.set_default_timeout(60_000)
        sign_in_and_sync(page, live, list_id)
        context.set_offline(True)
        record_60_doors(page, live, list_id)
        figures["indexeddb_bytes_60_doors"] = int(page.evaluate(IDB_BYTES))
        say("60 doors recorded")
        starts = [cold_start(context, live, list_id) for _ in range(runs)]
        figures["cold_start_offline_ms"] = round(statistics.median(starts), 1)
        say(f"cold starts: {[round(s) for s in starts]}")
        times = page.evaluate(RECORD_TIMES, [list_id, 100])
        figures["record_door_p95_ms"] = round(statistics.quantiles(times, n=20)[18], 2)
        page.evaluate("window.canvassApp.syncNow = async () => null")  # no automatic sync while measuring
        context.set_offline(False)
        assert page.evaluate("window.canvassApp.core.sync().then((r) => r.pushed.ok && r.pulled.ok)")
        pushes = []
        for _ in range(runs):
            pushes.append(float(page.evaluate(PUSH_500, [list_id])))
        figures["sync_500_records_ms"] = round(statistics.median(pushes), 1)
        say(f"500-record pushes: {[round(p) for p in pushes]}")
        context.close()
        browser.close()
        return figures


def cli() -> None:
    """Parse arguments, run, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    result = run(args.runs)
    result["total_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    cli()
