"""The survey editor end to end: an organiser builds a survey in the console, publishes it, and a phone pulls it.

Debian's Chromium (Playwright) against the real server on the demo town. The organiser adds
three questions (a single choice, a yes/no shown only after one answer, a number), reorders
them, sets a Welsh translation, a door script and the outcome codes, and publishes; the
reference phone client (sync/) then pulls the new version and the demo's first version
stops being active. A special category question is refused in words on the page.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import access_token, registered_phone, run_async, shot, sign_in, watch_errors

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


async def _phone_pulls(base: str, token: str, campaign_id: int) -> dict[str, dict[str, Any]]:
    """The demo canvasser's phone (the reference SyncClient): register, pull; returns its surveys by id."""
    async with registered_phone(base, token, campaign_id, "survey phone") as phone:
        assert (await phone.pull(retries=2)).ok
        return {i: phone.get("survey", i) for i in phone.ids("survey")}  # type: ignore[misc]


def _question(page: Any, index: int) -> Any:
    return page.locator("#survey-editor .question").nth(index)


def test_organiser_builds_and_publishes_a_survey_a_phone_pulls_it(browser: Any, live_server: str) -> None:
    base = live_server
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    watch_errors(page, errors)
    sign_in(page, base, "organiser@demo.canvass")
    page.locator('#tabs [data-view="surveys"]').click()
    page.wait_for_selector("#view-surveys:not([hidden])")
    page.wait_for_function("() => document.querySelectorAll('#surveys-table tbody tr[data-survey]').length === 1")
    assert "(phones use this)" in page.locator("#surveys-table tbody").inner_text()  # the demo's survey

    page.locator("#survey-new").click()
    page.locator("#survey-name").fill("Spring doorstep")
    page.locator("#survey-script").fill("Hello, I'm with the Greens.\nHave you got a minute?")
    page.locator("#survey-languages").fill("cy")
    page.locator("#survey-languages").dispatch_event("change")
    page.locator("#survey-script-cy").fill("Helo, rydw i gyda'r Gwyrddion.")

    first = _question(page, 0)
    first.locator(".q-text").fill("How many voters live here?")
    first.locator(".q-key").fill("household")
    first.locator(".q-kind").select_option("number")
    page.locator("#question-add").click()
    second = _question(page, 1)
    second.locator(".q-text").fill("How will you vote?")
    second.locator(".q-key").fill("vote")
    second.locator(".q-options").fill("Green\nRed\nBlue")
    second.locator(".q-required").check()
    second.locator(".q-tr-text").fill("Sut byddwch chi'n pleidleisio?")
    second.locator(".q-tr-options").fill("Gwyrdd\nCoch\nGlas")
    # move the vote question first, so a later question can depend on it
    second.locator(".q-up").click()
    assert _question(page, 0).get_attribute("data-key") == "vote"
    page.locator("#question-add").click()
    third = _question(page, 2)
    third.locator(".q-text").fill("Would you show a poster?")
    third.locator(".q-key").fill("poster")
    third.locator(".q-kind").select_option("yes_no")
    _question(page, 2).locator(".q-showif").select_option("vote")
    _question(page, 2).locator(".q-showif-equals").fill("Green")
    page.locator('.outcome-on[data-code="spoke"]').check()
    page.locator('.outcome-label[data-code="spoke"]').fill("Talked on the doorstep")
    page.locator('.outcome-on[data-code="come_back"]').check()

    # a special category question is refused with the privacy rule in words
    page.locator("#question-add").click()
    _question(page, 3).locator(".q-text").fill("What is your religion?")
    _question(page, 3).locator(".q-key").fill("belief")
    _question(page, 3).locator(".q-kind").select_option("text")
    page.locator("#survey-save").click()
    page.wait_for_selector("#error:not([hidden])")
    refusal = page.locator("#error-text").inner_text()
    assert "special category" in refusal and "article 9" in refusal, refusal
    shot(page, "survey-01-refused")
    page.locator("#error-close").click()
    _question(page, 3).locator(".q-remove").click()

    page.locator("#survey-publish").click()
    page.wait_for_function("() => (document.querySelector('#survey-result')?.textContent || '').startsWith('Published')")
    shot(page, "survey-02-published")
    table = page.locator("#surveys-table tbody").inner_text()
    assert "Spring doorstep" in table and table.count("(phones use this)") == 1
    # a published version is read-only in the editor
    assert page.locator("#survey-name").is_disabled()
    assert "null" not in page.locator("#survey-editor").inner_text()
    # the refused save (422) and the sign-in check on page load (401) are the only failed requests
    unexpected = [e for e in errors if "status of 401" not in e and "status of 422" not in e]
    assert not unexpected, unexpected

    campaign_id = int(page.locator("#campaign").input_value())
    surveys = run_async(_phone_pulls(base, access_token(base, "canvasser@demo.canvass"), campaign_id))
    active = [s for s in surveys.values() if s["is_active"]]
    assert len(active) == 1, surveys
    survey = active[0]
    assert survey["name"] == "Spring doorstep" and survey["status"] == "published"
    assert [q["key"] for q in survey["questions"]] == ["vote", "household", "poster"]
    vote, household, poster = survey["questions"]
    assert vote["required"] is True and vote["options"] == ["Green", "Red", "Blue"]
    assert vote["translations"] == {"cy": {"text": "Sut byddwch chi'n pleidleisio?", "options": ["Gwyrdd", "Coch", "Glas"]}}
    assert household["kind"] == "number" and poster["show_if"] == {"question": "vote", "equals": ["Green"]}
    assert survey["script"] == "Hello, I'm with the Greens.\nHave you got a minute?"
    assert survey["translations"] == {"cy": {"script": "Helo, rydw i gyda'r Gwyrddion."}}
    assert survey["outcomes"] == [{"code": "spoke", "label": "Talked on the doorstep"}, {"code": "come_back", "label": "Come back later"}]
    context.close()
