"""The console's volunteer and list management in Debian's headless Chromium against the real server (demo town).

Signed-out pages show no tabs and never call the API with a missing campaign; an organiser
makes a join link (with its QR code, drawn by the server) and revokes it; and splits,
merges and re-knocks lists from the map.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import watch_errors

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
