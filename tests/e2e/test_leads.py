"""The campaign lead's screens in Debian's headless Chromium against the real server on the demo town.

As a lead: the answers chart renders with its data table (and the progress charts with theirs),
the plan map shows no drawing tools (an organiser's does), and the live field view updates
without a reload when new knocks arrive. Canvassing events are written straight into the
server's SQLite database (as a sync would leave them; the tallies' triggers run).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import CANVASS, PASSWORD, ROOT
from tests.e2e.harness import access_token as _token
from tests.e2e.harness import free_port as _free_port
from tests.e2e.harness import run_async as _run_async
from tests.e2e.harness import shot as _shot
from tests.e2e.harness import sign_in as _sign_in
from tests.e2e.harness import unavailable as _unavailable
from tests.e2e.harness import watch_errors as _watch_errors

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
VOTES = ["Red", "Blue", "Yellow", "Red", "Green", "Red", "Don't know"]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    """The real app under uvicorn with the demo town in a SQLite file; (base URL, async database URL)."""
    if not (ROOT / "server/console/static/vendor/.built").exists():
        _unavailable("the console's libraries are not built: run `make console`")
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"canvass-leads-e2e-{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    database = folder / "canvass.sqlite3"
    env = dict(os.environ, CANVASS_DATABASE_URL=f"sqlite:///{database}", CANVASS_SECRET_KEY=secrets.token_urlsafe(48), CANVASS_TILE_URL="")
    env.pop("DATABASE_URL", None)
    for args in (["db", "upgrade"], ["demo"]):
        done = subprocess.run([CANVASS, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"canvass {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    port = _free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen([CANVASS, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not become ready:\n{(folder / 'server.log').read_text()}")
            time.sleep(0.5)
        yield base, f"sqlite+aiosqlite:///{database}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def _knock(url: str, first: int, count: int, with_device: bool = False) -> int:
    """Record `count` knocks today (two in three answered, with a voting intention) by the demo canvasser; returns the campaign id."""
    from sqlalchemy import select

    from server.db.models import Address, Answer, Campaign, ContactAttempt, Device, User
    from server.db.session import create_engine_for, create_sessionmaker

    engine = create_engine_for(url)
    try:
        async with create_sessionmaker(engine)() as session:
            campaign_id = (await session.scalars(select(Campaign.id).order_by(Campaign.id))).first()
            canvasser = (await session.scalars(select(User.id).where(User.email == "canvasser@demo.canvass"))).one()
            addresses = (await session.scalars(select(Address.id).where(Address.campaign_id == campaign_id).order_by(Address.id).offset(first).limit(count))).all()
            now = datetime.now(UTC)
            for n, address_id in enumerate(addresses):
                k = first + n
                at = now - timedelta(minutes=(count - n) % 50)
                spoke = k % 3 != 2
                session.add(ContactAttempt(id=f"e2e-att-{k}", campaign_id=campaign_id, address_id=address_id, outcome="spoke" if spoke else "not_home",
                                           hlc=f"{int(at.timestamp() * 1000):015d}-00000-e2e", at=at, user_id=canvasser))
                if spoke:
                    session.add(Answer(id=f"e2e-ans-{k}", campaign_id=campaign_id, address_id=address_id, question_key="voting_intention",
                                       value=VOTES[k % len(VOTES)], hlc=f"{int(at.timestamp() * 1000):015d}-00001-e2e", user_id=canvasser))
            if with_device:
                session.add(Device(user_id=canvasser, campaign_id=campaign_id, name="e2e phone", node_id="e2e0000000000001", last_sync_at=now))
            await session.commit()
            return int(campaign_id)
    finally:
        await engine.dispose()


def _lead_page(browser: Any, base: str, errors: list[str]) -> Any:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    _watch_errors(page, errors)
    _sign_in(page, base, "lead@demo.canvass")
    return page


def test_lead_sees_answer_charts_with_tables_no_drawing_tools_and_a_live_view(browser: Any, server: tuple[str, str]) -> None:
    """Charts render with their data tables; the lead's plan map has no drawing tools (the organiser's has); the live view updates."""
    base, url = server
    errors: list[str] = []
    _run_async(_knock(url, 0, 60, with_device=True))
    page = _lead_page(browser, base, errors)

    # Results: the answers chart (voting intention by area) and its table; tables behind the progress charts.
    page.wait_for_selector("#view-results:not([hidden])")
    page.wait_for_selector("#leads-answers-data tbody tr")
    page.wait_for_function("() => window.Chart.getChart(document.querySelector('#leads-answers-chart')) !== undefined")
    datasets = page.evaluate("() => window.Chart.getChart(document.querySelector('#leads-answers-chart')).data.datasets.map((d) => d.label)")
    assert "Red" in datasets
    table = page.locator("#leads-answers-data")
    assert "Voting intention" in table.locator("caption").inner_text() or "vote" in table.locator("caption").inner_text().lower()
    headers = table.locator("thead th").all_inner_texts()
    assert headers[0] == "Area" and "Red" in headers and headers[-1] == "Respondents"
    assert table.locator("tbody th[scope=row]").count() >= 1
    assert page.locator("#leads-answers-chart").get_attribute("aria-describedby") == "leads-answers-table"
    page.locator("#leads-answers-by").select_option("canvasser")
    page.wait_for_function("() => document.querySelector('#leads-answers-data thead th').innerText === 'Canvasser'")
    assert "Cam Canvasser" in page.locator("#leads-answers-data tbody").inner_text()
    red = [int(v) for v in page.locator("#leads-answers-data tbody tr").first.locator("td").nth(headers.index("Red") - 1).all_inner_texts() if v.isdigit()]
    assert red == [sum(1 for k in range(60) if k % 3 != 2 and VOTES[k % len(VOTES)] == "Red")]
    page.wait_for_selector("#chart-outcomes-table tbody tr")
    assert "spoke" in page.locator("#chart-outcomes-table").inner_text()
    page.wait_for_selector("#chart-days-table tbody tr")
    _shot(page, "leads-01-answers-chart")

    # The results map: coloured by the server's classes; each area's tooltip gives the count behind it, or says it is suppressed.
    page.wait_for_function("() => document.querySelectorAll('#results-map path.leaflet-interactive').length >= 10")
    assert "suppressed" in page.locator("#results-legend").inner_text()
    tips = []
    for n in range(page.locator("#results-map path.leaflet-interactive").count()):
        page.locator("#results-map path.leaflet-interactive").nth(n).dispatch_event("mouseover")
        tips.append(page.locator(".leaflet-tooltip").last.inner_text())
    assert any("doors knocked)" in t for t in tips) and any("suppressed: fewer than" in t for t in tips), tips[:5]

    # The plan map: no drawing or editing tools for a lead.
    page.get_by_role("button", name="Plan (map)").click()
    page.wait_for_selector("#view-plan:not([hidden])")
    page.wait_for_function("() => document.querySelectorAll('#plan-map path.leaflet-interactive').length >= 10")
    assert page.locator("#plan-map .leaflet-pm-toolbar").count() == 0
    assert not page.locator("#draw-start").is_visible()
    _shot(page, "leads-02-lead-plan-no-tools")

    # The live field view: today's knocks, the canvasser's last sync, and an update without a reload.
    page.get_by_role("button", name="Live field").click()
    page.wait_for_selector("#live-lists-table tbody tr")
    page.wait_for_function("() => document.querySelector('#live-updated').dataset.knocks === '60'")
    assert page.locator("#live-hours-table tbody tr").count() >= 1
    page.wait_for_function("() => window.Chart.getChart(document.querySelector('#live-hours-chart')) !== undefined")
    canvassers = page.locator("#live-canvassers-table").inner_text()
    assert "Cam Canvasser" in canvassers and "never synced" not in canvassers.split("Cam Canvasser")[1].split("\n")[0]
    marker = page.evaluate("() => window.__leadsMarker = 'same page'")
    _run_async(_knock(url, 60, 5))
    page.wait_for_function("() => document.querySelector('#live-updated').dataset.knocks === '65'", timeout=30_000)
    assert page.evaluate("() => window.__leadsMarker") == "same page" or marker is None  # no reload happened
    _shot(page, "leads-03-live-view")
    page.context.close()

    # An organiser's plan map keeps its drawing tools.
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    organiser = context.new_page()
    organiser.set_default_timeout(60_000)
    _watch_errors(organiser, errors)
    _sign_in(organiser, base, "organiser@demo.canvass")
    organiser.wait_for_selector("#view-plan:not([hidden])")
    organiser.wait_for_selector("#plan-map .leaflet-pm-toolbar")
    assert organiser.locator("#draw-start").is_visible()
    context.close()
    assert _token(base, "lead@demo.canvass") and PASSWORD
    unexpected = [e for e in errors if "status of 401" not in e]
    assert not unexpected, unexpected


