"""The canvasser app shows a published survey as built: every question kind, skip logic, required questions,
the door script, the campaign's outcome codes, and the wording of the phone's language (Welsh here).

Debian's Chromium as a touch phone with locale cy-GB against the real server on the demo town; the
organiser publishes through the API (tests/e2e/test_survey_editor.py covers the console); the answers
the phone sends land under the survey version it was given.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.test_phone import PHONE, Phone, _db_rows, browser, live, playwright_and_browser  # noqa: F401  (fixtures)
from tests.phone.live import Live

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SURVEY = {
    "name": "Phone survey",
    "script": "Hello from the Greens.",
    "translations": {"cy": {"script": "Helo gan y Gwyrddion."}},
    "outcomes": [{"code": "spoke", "label": "Talked", "translations": {"cy": "Siarad"}}, {"code": "come_back", "label": "Call back"}],
    "questions": [
        {"key": "vote", "text": "How will you vote?", "kind": "choice", "required": True, "options": ["Green", "Red"],
         "translations": {"cy": {"text": "Sut byddwch chi'n pleidleisio?", "options": ["Gwyrdd", "Coch"]}}},
        {"key": "poster", "text": "Would you show a poster?", "kind": "yes_no", "show_if": {"question": "vote", "equals": ["Green"]}},
        {"key": "issues", "text": "What matters most?", "kind": "multiple_choice", "options": ["Parks", "Buses", "Housing"]},
        {"key": "certainty", "text": "How sure are you?", "kind": "scale", "min": 1, "max": 5},
        {"key": "household", "text": "How many voters live here?", "kind": "number", "min": 0, "max": 20},
        {"key": "comments", "text": "Why a poster?", "kind": "text", "show_if": {"question": "poster", "equals": [True]}},
    ],
}


def test_phone_renders_every_kind_skip_logic_required_and_its_language(browser: Any, live: Live) -> None:  # noqa: F811
    made = live.api("POST", f"/api/campaigns/{live.campaign_id}/surveys", json=SURVEY)
    assert made.status_code == 201, made.text
    survey_id = made.json()["id"]
    assert live.api("POST", f"/api/campaigns/{live.campaign_id}/surveys/{survey_id}/publish").status_code == 200

    list_id = live.make_list(3, "Survey list")
    phone = Phone(browser, live, "survey", context=browser.new_context(**PHONE, locale="cy-GB"))
    email = f"survey-{uuid.uuid4().hex[:6]}@example.org"
    phone.join(live.join_code(), email)
    live.assign(list_id, email)
    phone.sync()
    phone.open_list(list_id)
    page = phone.page
    page.locator("#go-next").tap()
    page.wait_for_selector("#door-address")

    # the campaign's outcome codes in the phone's language, the Welsh script and question
    assert [b.get_attribute("data-outcome") for b in page.locator("button.outcome").all()] == ["spoke", "come_back"]
    assert page.locator("button[data-outcome='spoke']").inner_text() == "Siarad"
    assert page.locator("#door-script").inner_text().endswith("Helo gan y Gwyrddion.")
    vote = page.locator(".question[data-key='vote']")
    assert "Sut byddwch chi'n pleidleisio?" in vote.locator("legend").inner_text()
    assert [b.inner_text() for b in vote.locator("button").all()] == ["Gwyrdd", "Coch"]
    # skip logic: the poster question waits for vote = Green; the required vote is flagged until answered
    assert page.locator(".question[data-key='poster']").count() == 0
    assert page.locator("#required-left").is_visible()
    assert [q.get_attribute("data-kind") for q in page.locator(".question").all()] == ["choice", "multiple_choice", "scale", "number"]
    phone.shot("survey-01-door")

    page.locator("button[data-outcome='spoke']").tap()
    page.wait_for_selector("#last-record")
    vote.locator("button[data-value='Green']").tap()
    page.wait_for_selector(".question[data-key='poster']")
    assert page.locator("#required-left").count() == 0
    page.locator(".question[data-key='poster'] button[data-value='true']").tap()
    page.wait_for_selector(".question[data-key='poster'] button.chosen")
    page.wait_for_selector(".question[data-key='comments'] textarea")  # shown once the poster answer is yes
    issues = page.locator(".question[data-key='issues']")
    issues.locator("button[data-value='Housing']").tap()
    page.wait_for_selector(".question[data-key='issues'] button[data-value='Housing'].chosen")
    issues.locator("button[data-value='Parks']").tap()
    page.wait_for_selector(".question[data-key='issues'] button[data-value='Parks'].chosen")
    page.locator(".question[data-key='certainty'] button[data-value='4']").tap()
    page.wait_for_selector(".question[data-key='certainty'] button.chosen")
    page.locator(".question[data-key='household'] input").fill("3")
    page.locator(".question[data-key='household'] button").tap()
    page.wait_for_function("() => document.querySelector(\".question[data-key='household'] input\").value === '3'")
    phone.shot("survey-02-answered")
    phone.sync()
    assert not phone.errors, phone.errors

    rows = _db_rows(live, "SELECT question_key, value, survey_id FROM answers WHERE survey_id = :s ORDER BY hlc", s=survey_id)
    import json

    latest = {key: (json.loads(value) if isinstance(value, str) else value) for key, value, _ in rows}
    assert latest == {"vote": "Green", "poster": True, "issues": ["Parks", "Housing"], "certainty": 4, "household": 3}
    phone.close()
