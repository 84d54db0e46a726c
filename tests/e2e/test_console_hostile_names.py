"""Stored script injection through the console, tried as an attacker would (issue 14).

Volunteers join through the real join flow (`/api/auth/join` with an organiser's code)
with display names that are HTML with event handlers; one of them is assigned a walk list
and canvasses it from a phone, so the name reaches every console screen that shows
canvassers: the plan map's route tooltips, the walk lists' assignee pickers, the members
table, the results by canvasser; an elector's phone number typed on that phone as HTML
reaches the follow-ups table. An organiser and a campaign lead then open each screen in
Chromium. Nothing may run (no dialog, no CSP violation, no page error), each name is shown
as text, and the console page carries a strict Content-Security-Policy.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.e2e.harness import access_token, phone_canvasses, run_async, shot, sign_in, watch_errors

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

HOSTILE_NAMES = ['<img src=x onerror=alert(1)>', '"><svg onload=alert(2)>']
HOSTILE_LIST_NAME = "<img src=x onerror=alert(3)>list"
HOSTILE_TARGET_NAME = "</option><script>alert(4)</script>"
HOSTILE_PHONE = "<img src=x onerror=alert(5)>"


def _volunteer_and_hostile_phone(phone: Any, address_ids: list[int]) -> None:
    """At a knocked door an elector wants to volunteer and gives consent and a 'phone number' that is HTML."""
    people = [phone.get("person", pid) for pid in phone.ids("person")]
    person = next(p for p in people if p and int(p["address_id"]) in address_ids)
    phone.record_answer(int(person["address_id"]), "would_volunteer", "Yes", person_id=int(person["id"]))
    phone.edit_field("person", int(person["id"]), "contact_consent", "yes")
    phone.edit_field("person", int(person["id"]), "phone", HOSTILE_PHONE)


def _api(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=120)


def _hostile_campaign(base: str) -> dict[str, Any]:
    """Volunteers join with hostile names; the organiser targets, cuts and assigns a list to each; one canvasses."""
    with _api(base, access_token(base, "organiser@demo.canvass")) as organiser:
        campaign_id = organiser.get("/api/campaigns").json()[0]["id"]
        code = organiser.post(f"/api/campaigns/{campaign_id}/join-codes", json={"hours_valid": 2, "max_uses": 5})
        assert code.status_code == 201, code.text
        volunteers = []
        for n, name in enumerate(HOSTILE_NAMES):
            email, password = f"hostile{n}@example.org", secrets.token_urlsafe(18)
            joined = httpx.post(f"{base}/api/auth/join", json={"code": code.json()["code"], "display_name": name, "email": email,
                                                              "password": password}, timeout=60)
            assert joined.status_code == 202, joined.text  # joining signs nobody in: the volunteer signs in next
            signed_in = httpx.post(f"{base}/api/auth/login", json={"email": email, "password": password}, timeout=60)
            assert signed_in.status_code == 200, signed_in.text
            volunteers.append({"name": name, "user_id": signed_in.json()["user_id"], "token": signed_in.json()["access_token"]})
        ranked = organiser.get(f"/api/campaigns/{campaign_id}/areas/rank", params={"measure": "bame_share", "top_n": 2}).json()
        codes = [feature["properties"]["code"] for feature in ranked["features"]]
        target = organiser.post(f"/api/campaigns/{campaign_id}/targets", json={
            "name": HOSTILE_TARGET_NAME, "area_codes": codes, "combine": "union", "measure": "bame_share"})
        assert target.status_code == 201, target.text
        cut = organiser.post(f"/api/campaigns/{campaign_id}/targets/{target.json()['id']}/cut", params={"wait": "true"},
                             json={"size": 60})
        assert cut.is_success, cut.text  # 202 (job) or, with wait=true on newer servers, 200
        list_ids = cut.json()["result"]["walk_list_ids"]
        assert len(list_ids) >= len(volunteers), cut.text
        renamed = organiser.patch(f"/api/campaigns/{campaign_id}/walklists/{list_ids[0]}", json={"name": HOSTILE_LIST_NAME})
        assert renamed.status_code == 200, renamed.text
        for list_id, volunteer in zip(list_ids, volunteers, strict=False):
            assigned = organiser.post(f"/api/campaigns/{campaign_id}/walklists/{list_id}/assign", json={"user_id": volunteer["user_id"]})
            assert assigned.status_code == 200, assigned.text
    run_async(phone_canvasses(base, volunteers[0]["token"], campaign_id, list_ids[0], knocks=3, before_push=_volunteer_and_hostile_phone))
    return {"campaign_id": campaign_id, "list_ids": list_ids[: len(volunteers)]}


def _open_page(browser: Any, dialogs: list[str], errors: list[str]) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 850})
    page = context.new_page()
    page.set_default_timeout(60_000)
    watch_errors(page, errors)
    page.on("dialog", lambda dialog: (dialogs.append(f"{dialog.type}: {dialog.message}"), dialog.dismiss()))
    return context, page


def _route_tooltips(page: Any) -> list[str]:
    """Hover every walk-list route on the plan map and read the tooltip Leaflet shows for it."""
    page.get_by_role("button", name="Plan (map)").click()
    page.wait_for_function("() => document.querySelectorAll('#plan-map path.route').length >= 2")
    texts = []
    routes = page.locator("#plan-map path.route")
    for n in range(routes.count()):
        routes.nth(n).dispatch_event("mouseover", {"bubbles": True, "clientX": 600, "clientY": 400})
        tooltip = page.locator("#plan-map .leaflet-tooltip:not(.street-name)").last
        tooltip.wait_for(state="attached")
        texts.append(tooltip.inner_text())
        routes.nth(n).dispatch_event("mouseout", {"bubbles": True, "clientX": 0, "clientY": 0})
    return texts


def _assert_names_shown_as_text(texts: str, where: str) -> None:
    for name in HOSTILE_NAMES:
        assert name in texts, f"{name!r} is not shown as text in {where}: {texts!r}"


def test_hostile_display_names_are_shown_as_text_and_never_run(browser: Any, live_server: str) -> None:
    """Names with HTML event handlers appear literally on every console screen, for an organiser and a lead; no script runs."""
    base = live_server
    _hostile_campaign(base)
    dialogs: list[str] = []
    errors: list[str] = []

    # --- the organiser: plan map tooltips, walk lists, people, results -------------------------
    context, page = _open_page(browser, dialogs, errors)
    sign_in(page, base, "organiser@demo.canvass")
    page.wait_for_selector("#view-plan:not([hidden])")
    tooltips = _route_tooltips(page)
    assert not dialogs, f"script from a stored name ran on the plan map: {dialogs}"
    _assert_names_shown_as_text(" | ".join(tooltips), "the plan map's route tooltips")
    assert any(HOSTILE_LIST_NAME in text for text in tooltips), tooltips
    assert HOSTILE_TARGET_NAME in page.locator("#cut-target").inner_text()
    shot(page, "hostile-01-organiser-plan")

    page.get_by_role("button", name="Walk lists").click()
    page.wait_for_selector("#lists-table tbody tr[data-list-id]")
    lists_text = page.locator("#lists-table").inner_text()
    assert HOSTILE_LIST_NAME in lists_text, lists_text
    options = page.locator("#lists-table select option").all_inner_texts()
    _assert_names_shown_as_text(" | ".join(options), "the walk lists' canvasser pickers")
    page.locator("#lists-table tbody tr[data-list-id]").first.get_by_role("button", name="Show on map").click()
    page.wait_for_selector("#plan-map .leaflet-tooltip")
    shot(page, "hostile-02-organiser-show-on-map")

    # The paper key-in form names the list in its picker and legend: as text.
    page.get_by_role("button", name="Key in sheets").click()
    page.wait_for_function("() => document.querySelectorAll('#paper-list option').length > 0")
    options = page.locator("#paper-list option").all_inner_texts()
    page.locator("#paper-list").select_option(index=next(i for i, o in enumerate(options) if HOSTILE_LIST_NAME in o))
    page.get_by_role("button", name="Open the sheet").click()
    page.wait_for_selector("#paper-form:not([hidden])")
    assert HOSTILE_LIST_NAME in page.locator("#paper-legend").inner_text()

    page.get_by_role("button", name="People").click()
    page.wait_for_selector("#members tbody tr")
    _assert_names_shown_as_text(page.locator("#members").inner_text(), "the members table")

    page.get_by_role("button", name="Results").click()
    page.wait_for_function("() => document.querySelector('#by-canvasser tbody').innerText.includes('onerror')")
    assert HOSTILE_NAMES[0] in page.locator("#by-canvasser").inner_text()
    assert HOSTILE_LIST_NAME in page.locator("#by-list").inner_text()
    page.wait_for_selector("#followups tbody tr th")
    assert HOSTILE_PHONE in page.locator("#followups").inner_text(), page.locator("#followups").inner_text()
    shot(page, "hostile-03-organiser-results")
    context.close()

    # --- the campaign lead: plan map, people, results -----------------------------------------
    context, page = _open_page(browser, dialogs, errors)
    sign_in(page, base, "lead@demo.canvass")
    page.wait_for_selector("#view-results:not([hidden])")
    page.wait_for_function("() => document.querySelector('#by-canvasser tbody').innerText.includes('onerror')")
    assert HOSTILE_NAMES[0] in page.locator("#by-canvasser").inner_text()
    page.wait_for_selector("#followups tbody tr th")
    assert HOSTILE_PHONE in page.locator("#followups").inner_text()
    tooltips = _route_tooltips(page)
    _assert_names_shown_as_text(" | ".join(tooltips), "the lead's plan map")
    page.get_by_role("button", name="People").click()
    page.wait_for_selector("#members tbody tr")
    _assert_names_shown_as_text(page.locator("#members").inner_text(), "the lead's members table")
    shot(page, "hostile-04-lead-people")

    # What injected script could take: no token in web storage, the refresh cookie invisible to script.
    storage = page.evaluate("() => JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage)])")
    assert "token" not in storage.lower(), storage
    assert "canvass_refresh" not in page.evaluate("() => document.cookie")
    assert any(c["name"] == "canvass_refresh" and c["httpOnly"] for c in context.cookies())
    page.reload()
    page.wait_for_selector("#session:not([hidden])")  # the HttpOnly cookie keeps the sign-in across a reload
    context.close()

    assert not dialogs, f"script from a stored name ran: {dialogs}"
    assert not [e for e in errors if "status of 401" not in e], errors

    # The console page itself carries the policy that would stop any script we failed to escape.
    console = httpx.get(f"{base}/console", timeout=30)
    policy = console.headers.get("content-security-policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives.get("default-src") == ["'self'"], policy
    assert "'unsafe-inline'" not in directives.get("script-src", directives["default-src"]), policy
    assert directives.get("object-src") == ["'none'"] and directives.get("base-uri") == ["'none'"], policy
    assert directives.get("frame-ancestors") == ["'none'"], policy
    assert console.headers.get("x-content-type-options") == "nosniff"
    assert console.headers.get("referrer-policy") == "no-referrer"

