"""Keying a paper walk sheet in the console, by keyboard only, in Debian's headless Chromium against the real server.

The organiser cuts lists (over the API), opens a list's key-in form from the Walk lists table
and keys 20 doors with the keyboard alone: an outcome code by its first letter, short answers
as written on the sheet (Q1 "2" is the second choice), Enter to the next door, Ctrl+Enter to
save. The results then appear in the console's results dashboard and in the results API.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.harness import access_token, shot, sign_in, watch_errors

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

KEYED = 20


def _cut_lists(base: str) -> tuple[int, int, dict[str, Any]]:
    """Target the top areas, cut them into lists and pick one with at least 20 doors to knock; its key-in form as the API gives it."""
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {access_token(base, 'organiser@demo.canvass')}"}, timeout=180) as api:
        campaign_id = api.get("/api/campaigns").json()[0]["id"]
        ranked = api.get(f"/api/campaigns/{campaign_id}/areas/rank", params={"measure": "bame_share", "top_n": 2}).json()
        codes = [feature["properties"]["code"] for feature in ranked["features"]]
        target = api.post(f"/api/campaigns/{campaign_id}/targets", json={"name": "Paper round", "area_codes": codes, "combine": "union", "measure": "bame_share"})
        assert target.status_code == 201, target.text
        cut = api.post(f"/api/campaigns/{campaign_id}/targets/{target.json()['id']}/cut", params={"wait": "true"}, json={"size": 40})
        assert cut.status_code == 200, cut.text
        for list_id in cut.json()["result"]["walk_list_ids"]:
            form = api.get(f"/api/campaigns/{campaign_id}/walklists/{list_id}/paper-form").json()
            if sum(1 for r in form["rows"] if r["kind"] == "door" and not r["skip"]) >= KEYED:
                return campaign_id, list_id, form
    raise AssertionError("no list with 20 doors to knock")


def _plan(index: int) -> tuple[str, str, list[str]]:
    """What door `index` of the sheet says: its code key, the outcome it records and its written short answers (Q1, Q2)."""
    if index % 4 == 0:
        return "s", "spoke", ["2", "7"]  # Q1 voting intention: 2 = Blue; Q2 likelihood 7 of 10
    if index % 4 == 1:
        return "n", "not_home", []
    if index % 4 == 2:
        return "s", "spoke", ["1"]  # Red, no scale written
    return "r", "refused", []


def test_organiser_keys_a_paper_sheet_by_keyboard(browser: Any, live_server: str) -> None:
    """20 doors keyed with the keyboard alone land as results the dashboard counts."""
    base = live_server
    campaign_id, list_id, form = _cut_lists(base)
    questions = [q["key"] for q in form["questions"]]
    assert questions[:2] == ["voting_intention", "likelihood_to_vote"], questions
    doors = [r for r in form["rows"] if r["kind"] == "door" and not r["skip"]][:KEYED]

    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1366, "height": 850})
    page = context.new_page()
    page.set_default_timeout(60_000)
    watch_errors(page, errors)
    sign_in(page, base, "organiser@demo.canvass")
    page.get_by_role("button", name="Walk lists").click()
    row = page.locator(f'#lists-table tbody tr[data-list-id="{list_id}"]')
    # Each list says how it was routed (the demo town has its streets imported).
    assert form["summary"]["routing"] == "street_network"
    assert "routed on streets" in row.inner_text()
    row.get_by_role("button", name="Key in sheet").click()
    page.wait_for_selector("#paper-form:not([hidden])")
    # The form follows the sheet: its door rows are the API's rows, in order.
    shown = page.locator("#paper-table tbody tr[data-address-id]").evaluate_all("rows => rows.map((r) => Number(r.dataset.addressId))")
    assert shown == [r["address_id"] for r in form["rows"] if r["kind"] == "door"]
    page.wait_for_function("() => document.activeElement && document.activeElement.classList.contains('paper-outcome')")

    for index, door in enumerate(doors):
        focused = page.evaluate("() => document.activeElement.getAttribute('aria-label')")
        assert focused.startswith("Outcome for") and door["address"] in focused, (index, focused, door)
        key, _, answers = _plan(index)
        page.keyboard.press(key)
        for answer in answers:
            page.keyboard.type(answer)
        if answers:
            page.keyboard.press("Enter")  # on to the next door
    assert page.locator("#paper-count").inner_text().startswith(f"{KEYED} doors keyed")
    shot(page, "paper-01-keyed")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("() => (document.querySelector('#paper-result').dataset.saved || '') === '20'")
    assert "Saved 20 doors" in page.locator("#paper-result").inner_text()
    assert page.locator("#paper-table tr.saved").count() == KEYED

    # The dashboard counts them.
    page.get_by_role("button", name="Results").click()
    page.wait_for_function(f"() => document.querySelector('#kpis').dataset.doorsKnocked === '{KEYED}'")
    shot(page, "paper-02-dashboard")
    context.close()

    headers = {"authorization": f"Bearer {access_token(base, 'lead@demo.canvass')}"}
    progress = httpx.get(f"{base}/api/campaigns/{campaign_id}/results/progress", headers=headers, timeout=60).json()
    expected: dict[str, int] = {}
    for index in range(KEYED):
        outcome = _plan(index)[1]
        expected[outcome] = expected.get(outcome, 0) + 1
    assert {k: v for k, v in progress["campaign"]["outcomes"].items() if v} == expected
    by_list = next(g for g in progress["walk_lists"] if g["name"] == form["summary"]["name"])
    assert by_list["doors_knocked"] == KEYED
    unexpected = [e for e in errors if "status of 401" not in e]
    assert not unexpected, unexpected
