"""The console's volunteer and list management in Debian's headless Chromium against the real server (demo town).

Signed-out pages show no tabs and never call the API with a missing campaign; an organiser
makes a join link (with its QR code, drawn by the server) and revokes it; and splits,
merges and re-knocks lists from the map.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.harness import access_token, phone_canvasses, run_async, shot, sign_in, watch_errors

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def _page(browser: Any, errors: list[str], requests: list[str] | None = None) -> Any:
    context = browser.new_context(viewport={"width": 1366, "height": 850})
    page = context.new_page()
    page.set_default_timeout(60_000)
    watch_errors(page, errors)
    if requests is not None:
        page.on("request", lambda r: requests.append(r.url))
    return page


def test_signed_out_console_shows_no_tabs_and_never_asks_for_campaign_null(browser: Any, live_server: str) -> None:
    """Before sign-in the tabs and "Sign out" are not shown; a tab clicked anyway (by script) makes no `/campaigns/null/` call."""
    errors: list[str] = []
    requests: list[str] = []
    page = _page(browser, errors, requests)
    page.goto(f"{live_server}/console")
    page.wait_for_selector("#signin:not([hidden])")
    assert not page.locator("#tabs").is_visible()
    assert not page.get_by_role("button", name="Sign out").is_visible()
    for view in ("lists", "people", "results", "plan"):
        page.evaluate("(view) => document.querySelector(`#tabs [data-view=\"${view}\"]`).click()", view)
    page.wait_for_timeout(500)  # let any request the clicks would start go out (the assertion is on what was sent)
    assert not [u for u in requests if "/campaigns/null" in u or "/campaigns/undefined" in u]
    assert page.locator("#signin").is_visible()
    page.context.close()


def _campaign_id(base: str, token: str) -> int:
    campaigns = httpx.get(f"{base}/api/campaigns", headers={"authorization": f"Bearer {token}"}, timeout=30).json()
    return int(campaigns[0]["id"])


def test_organiser_makes_a_join_link_with_its_qr_code_and_revokes_it(browser: Any, live_server: str) -> None:
    """Volunteers view: a join link with expiry and use limit, its QR code (an SVG from the server) shown; revoking it says so."""
    errors: list[str] = []
    page = _page(browser, errors)
    sign_in(page, live_server, "organiser@demo.canvass")
    page.get_by_role("button", name="Volunteers").click()
    page.wait_for_selector("#view-volunteers:not([hidden])")
    page.get_by_label("Valid for (hours)").fill("24")
    page.get_by_label("Use limit (people)").fill("3")
    page.get_by_role("button", name="Create join link").click()
    page.wait_for_selector("#joincode-out img.qr")
    page.wait_for_function("() => { const i = document.querySelector('#joincode-out img.qr'); return i && i.complete && i.naturalWidth > 0; }")
    url = page.locator("#joincode-out a.join-url").inner_text()
    code = url.rsplit("=", 1)[1]
    assert "/app/join?code=" in url
    row = page.locator(f'#join-links tr[data-code="{code}"]')
    assert "3 of 3" in row.inner_text() and row.locator(".link-status").inner_text() == "active"
    assert row.locator("img.qr").count() == 1
    shot(page, "manage-01-join-link")
    assert httpx.get(url.replace(url.split("/app/")[0], live_server), timeout=30).status_code == 200  # the link opens the phone app's join page
    row.get_by_role("button", name="Revoke").click()
    page.wait_for_function(f"() => document.querySelector('#join-links tr[data-code=\"{code}\"] .link-status').textContent === 'revoked'")
    # A team with a lead, then a member added to it.
    page.get_by_label("Team name").fill("Riverside")
    page.get_by_label("Team lead").select_option(label="Lee Lead (lead)")
    page.get_by_role("button", name="Create team").click()
    team = page.get_by_role("region", name="Team Riverside")
    team.wait_for()
    assert "Lead: Lee Lead" in team.inner_text()
    team.get_by_label("Add to team Riverside").select_option(label="Cam Canvasser (canvasser)")
    team.get_by_role("button", name="Add to team").click()
    page.wait_for_function("() => document.querySelector('[data-team-id] ul') && document.querySelector('[data-team-id] ul').children.length === 2")
    shot(page, "manage-01b-team")
    assert not [e for e in errors if "status of 401" not in e], errors  # 401: the sign-in page's refresh with no cookie
    page.context.close()


def test_lists_split_merge_reknock_and_show_on_the_map(browser: Any, live_server: str) -> None:
    """Plan map: numbered routes with start markers and skipped doors; split, merge and re-knock from the panel; "Show" picks a list out."""
    base = live_server
    token = access_token(base, "organiser@demo.canvass")
    headers = {"authorization": f"Bearer {token}"}
    campaign_id = _campaign_id(base, token)
    ranked = httpx.get(f"{base}/api/campaigns/{campaign_id}/areas/rank", params={"top_n": 2}, headers=headers, timeout=60).json()
    codes = [f["properties"]["code"] for f in ranked["features"]][:2]
    target = httpx.post(f"{base}/api/campaigns/{campaign_id}/targets", json={"name": "Map edits", "area_codes": codes, "combine": "union"},
                        headers=headers, timeout=60)
    assert target.status_code == 201, target.text
    cut = httpx.post(f"{base}/api/campaigns/{campaign_id}/targets/{target.json()['id']}/cut", params={"wait": "true"}, json={"size": 25},
                     headers=headers, timeout=300)
    assert cut.status_code == 200, cut.text
    list_ids = sorted(cut.json()["result"]["walk_list_ids"])
    assert len(list_ids) >= 3, "the test needs at least three lists"
    first = list_ids[0]
    canvasser = httpx.get(f"{base}/api/campaigns/{campaign_id}/members", headers=headers, timeout=30).json()
    canvasser_id = next(m["user_id"] for m in canvasser if m["email"] == "canvasser@demo.canvass")
    assert httpx.post(f"{base}/api/campaigns/{campaign_id}/walklists/{first}/assign", json={"user_id": canvasser_id}, headers=headers, timeout=30).status_code == 200
    # The phone knocks six doors (two not at home) and records that the first household asked not to be visited.
    run_async(phone_canvasses(base, access_token(base, "canvasser@demo.canvass"), campaign_id, first, 6,
                              before_push=lambda phone, ids: phone.record_observation(address_id=ids[0], kind="do_not_visit")))

    errors: list[str] = []
    page = _page(browser, errors)
    sign_in(page, base, "organiser@demo.canvass")
    page.wait_for_selector("#view-plan:not([hidden])")
    count = len(list_ids)
    page.wait_for_function(f"() => document.querySelectorAll('#map-lists li[data-list-id]').length === {count}")
    assert page.locator("#plan-map .route-num").count() == count
    assert page.locator("#plan-map .route-start").count() == count
    assert page.locator(f"#plan-map .door-skip-{first}").count() == 1  # the do-not-knock door, shown as skipped
    colours = page.evaluate("() => [...document.querySelectorAll('#map-lists .route-num-badge')].map((b) => b.style.backgroundColor)")
    assert len(set(colours)) == len(colours), "two lists share a colour"
    shot(page, "manage-02-lists-on-map")

    # Split the first list in two.
    page.locator(f'#map-lists li[data-list-id="{first}"]').get_by_role("button", name="Split").click()
    page.wait_for_function(f"() => document.querySelectorAll('#map-lists li[data-list-id]').length === {count + 1}")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('split into 2 lists')")
    ids_now = [int(i) for i in page.locator("#map-lists li[data-list-id]").evaluate_all("(els) => els.map((e) => e.dataset.listId)")]
    added = max(ids_now)
    # Merge it back: tick one list in the panel and click the other's route number on the map.
    page.locator(f"#tick-{first}").check()
    page.locator(f"#plan-map .route-num-{added}").click()
    page.wait_for_function(f"() => document.querySelector('#plan-map').dataset.ticked === '{first},{added}'")
    page.get_by_role("button", name="Merge ticked").click()
    page.wait_for_function(f"() => document.querySelectorAll('#map-lists li[data-list-id]').length === {count}")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('Merged 2 lists')")
    # Re-knock the not-homes of the first list: a new list of its two not-at-home doors.
    page.locator(f"#tick-{first}").check()
    page.get_by_role("button", name="Re-knock not-homes of ticked").click()
    page.wait_for_function(f"() => document.querySelectorAll('#map-lists li[data-list-id]').length === {count + 1}")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('Re-knock list made')")
    status = page.locator("#status").inner_text()
    assert "Re-knock list made" in status and "(2 doors)" in status, status
    reknock = max(int(i) for i in page.locator("#map-lists li[data-list-id]").evaluate_all("(els) => els.map((e) => e.dataset.listId)"))
    assert page.locator("#plan-map").get_attribute("data-focused") == str(reknock)
    shot(page, "manage-03-reknock")
    # "Show on map" from the Walk lists view zooms to and picks out that list.
    page.get_by_role("button", name="Walk lists").click()
    page.locator(f'#lists-table tr[data-list-id="{list_ids[1]}"]').get_by_role("button", name="Show on map").click()
    page.wait_for_selector("#view-plan:not([hidden])")
    page.wait_for_function(f"() => document.querySelector('#plan-map').dataset.focused === '{list_ids[1]}'")
    assert page.locator(f'#map-lists li[data-list-id="{list_ids[1]}"]').get_attribute("class") == "focused"
    lists = httpx.get(f"{base}/api/campaigns/{campaign_id}/walklists", headers=headers, timeout=30).json()
    assert next(w for w in lists if w["id"] == reknock)["doors"] == 2
    assert not [e for e in errors if "status of 401" not in e], errors  # 401: the sign-in page's refresh with no cookie
    page.context.close()
