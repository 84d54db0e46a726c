"""The survey editor's API on both databases: drafts, publishing, immutability, the privacy rule, and sync to phones."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Answer, AuditEvent, ChangeFeed
from tests.conftest import World
from tests.sync.conftest import Town, make_town, register_phone


@pytest.fixture
async def town(sessionmaker: async_sessionmaker[AsyncSession], world: World) -> Town:
    """Two walk lists (list 0 assigned to the canvasser) and a published demo-style survey."""
    return await make_town(sessionmaker, world)


def doorstep(name: str = "Spring doorstep") -> dict[str, Any]:
    """A survey with every question kind, skip logic, a script, outcome codes and a Welsh translation."""
    return {
        "name": name,
        "script": "Hello, I'm calling for the Green candidate.\nHave you got a minute?",
        "outcomes": [{"code": "spoke", "label": "Talked"}, {"code": "refused", "label": "Refused", "translations": {"cy": "Gwrthod"}},
                     {"code": "come_back", "label": "Call back"}],
        "translations": {"cy": {"script": "Helo, rwy'n galw ar ran yr ymgeisydd Gwyrdd."}},
        "questions": [
            {"key": "vote", "text": "How will you vote?", "kind": "choice", "required": True, "options": ["Green", "Red", "Blue"],
             "translations": {"cy": {"text": "Sut byddwch chi'n pleidleisio?", "options": ["Gwyrdd", "Coch", "Glas"]}}},
            {"key": "why_green", "text": "What matters most to you?", "kind": "multiple_choice", "options": ["Parks", "Buses", "Housing"],
             "show_if": {"question": "vote", "equals": ["Green"]}},
            {"key": "certainty", "text": "How sure are you?", "kind": "scale", "min": 1, "max": 5,
             "show_if": {"question": "why_green", "equals": ["Parks"]}},
            {"key": "poster", "text": "Would you show a poster?", "kind": "yes_no"},
            {"key": "household", "text": "How many voters live here?", "kind": "number", "min": 0, "max": 20},
            {"key": "comments", "text": "Anything else?", "kind": "text"},
        ],
    }


async def test_draft_edit_publish_and_versions(client: AsyncTestClient[Litestar], world: World, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    base = f"/api/campaigns/{world.campaign_a}/surveys"
    organiser = world.auth("organiser")
    made = await client.post(base, json=doorstep(), headers=organiser)
    assert made.status_code == 201, made.text
    draft = made.json()
    assert (draft["status"], draft["version"], draft["is_active"]) == ("draft", 1, False)
    assert draft["questions"][1]["show_if"] == {"question": "vote", "equals": ["Green"]}
    assert draft["outcomes"][1] == {"code": "refused", "label": "Refused", "translations": {"cy": "Gwrthod"}}

    # a second draft of the same survey is refused while one is open
    assert (await client.post(base, json=doorstep(), headers=organiser)).status_code == 409
    edited = doorstep()
    edited["questions"].append({"key": "postal", "text": "Would you like a postal vote?", "kind": "yes_no", "required": True})
    changed = await client.put(f"{base}/{draft['id']}", json=edited, headers=organiser)
    assert changed.status_code == 200, changed.text
    assert changed.json()["questions"][-1]["key"] == "postal"

    published = await client.post(f"{base}/{draft['id']}/publish", headers=organiser)
    assert published.status_code == 200, published.text
    assert (published.json()["status"], published.json()["is_active"]) == ("published", True)
    assert published.json()["published_at"] is not None
    # published versions are immutable
    assert (await client.put(f"{base}/{draft['id']}", json=doorstep(), headers=organiser)).status_code == 409
    assert (await client.post(f"{base}/{draft['id']}/publish", headers=organiser)).status_code == 409

    # version 2 starts as a copy, is edited, then replaces version 1 for phones
    v2 = await client.post(f"{base}/versions", json={"from_survey_id": draft["id"]}, headers=organiser)
    assert v2.status_code == 201, v2.text
    assert (v2.json()["version"], v2.json()["status"]) == (2, "draft")
    assert [q["key"] for q in v2.json()["questions"]] == [q["key"] for q in published.json()["questions"]]
    assert (await client.post(f"{base}/{v2.json()['id']}/publish", headers=organiser)).json()["is_active"] is True

    # reviewers read every version; the first is now inactive but kept
    listed = await client.get(base, headers=world.auth("lead"))
    assert listed.status_code == 200
    assert [(s["version"], s["status"], s["is_active"]) for s in listed.json()] == [(1, "published", False), (2, "published", True)]
    assert (await client.get(f"{base}/{draft['id']}", headers=world.auth("lead"))).json()["version"] == 1
    # reviewers and canvassers may not write; canvassers may not read (they get the survey through sync)
    assert (await client.post(base, json=doorstep("Other"), headers=world.auth("lead"))).status_code == 403
    assert (await client.get(base, headers=world.auth("canvasser"))).status_code == 403
    # another campaign's survey is not found
    assert (await client.get(f"/api/campaigns/{world.campaign_b}/surveys/{draft['id']}", headers=world.auth("superuser"))).status_code == 404

    archived = await client.post(f"{base}/{v2.json()['id']}/archive", headers=organiser)
    assert (archived.json()["status"], archived.json()["is_active"]) == ("archived", False)

    async with sessionmaker() as session:
        actions = [(a.action, a.resource) for a in (await session.scalars(
            select(AuditEvent).where(AuditEvent.resource.like("survey:%")).order_by(AuditEvent.id))).all()]
    assert actions == [
        ("create", f"survey:{draft['id']}"), ("update", f"survey:{draft['id']}"), ("publish", f"survey:{draft['id']}"),
        ("create", f"survey:{v2.json()['id']}"), ("publish", f"survey:{v2.json()['id']}"), ("archive", f"survey:{v2.json()['id']}"),
    ]


@pytest.mark.parametrize(
    "question",
    [
        {"key": "ethnic_group", "text": "Which group do you belong to?", "kind": "text"},
        {"key": "background", "text": "What is your religion?", "kind": "text"},
        {"key": "wellbeing", "text": "Any health problems?", "kind": "yes_no"},
        {"key": "lang", "text": "Which language?", "kind": "text", "translations": {"cy": {"text": "Beth yw eich ethnicity?"}}},
    ],
)
async def test_special_category_questions_are_refused_with_the_rule(client: AsyncTestClient[Litestar], world: World, question: dict[str, Any]) -> None:
    body = doorstep()
    body["questions"].append(question)
    response = await client.post(f"/api/campaigns/{world.campaign_a}/surveys", json=body, headers=world.auth("organiser"))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert question["key"] in detail and "special category" in detail and "article 9" in detail
    assert "Census counts for areas" in detail


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"key": "early", "text": "Early?", "kind": "yes_no", "show_if": {"question": "later", "equals": ["Yes"]}}, "not an earlier question"),
        ({"key": "early", "text": "Early?", "kind": "yes_no", "show_if": {"question": "vote", "equals": ["Purple"]}}, "not an answer"),
        ({"key": "pick", "text": "Pick", "kind": "multiple_choice"}, "at least one choice"),
        ({"key": "rate", "text": "Rate", "kind": "scale"}, "needs a min and a max"),
        ({"key": "vote", "text": "Again", "kind": "yes_no"}, "appears twice"),
    ],
)
async def test_bad_questions_are_refused(client: AsyncTestClient[Litestar], world: World, change: dict[str, Any], words: str) -> None:
    body = doorstep()
    body["questions"].insert(1, change)
    response = await client.post(f"/api/campaigns/{world.campaign_a}/surveys", json=body, headers=world.auth("organiser"))
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]


async def test_publishing_reaches_phones_and_old_versions_still_sync(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    base = f"/api/campaigns/{world.campaign_a}/surveys"
    organiser = world.auth("organiser")
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    assert (await phone.pull()).ok
    assert phone.ids("survey") == {str(town.survey_id)}  # the survey made before the editor

    draft = (await client.post(base, json=doorstep(), headers=organiser)).json()
    assert (await phone.pull()).ok
    assert phone.ids("survey") == {str(town.survey_id)}, "a draft never reaches a phone"
    async with sessionmaker() as session:
        assert (await session.scalars(select(ChangeFeed).where(ChangeFeed.entity == "survey"))).all() == []

    # a phone still on the old version records an answer under it
    address = town.addresses[town.lists[0]][0]
    phone.record_answer(address, "vote", "grn", walk_list_id=town.lists[0], survey_id=town.survey_id)

    await client.post(f"{base}/{draft['id']}/publish", headers=organiser)
    pushed, pulled = await phone.sync()
    assert pushed.ok and pulled is not None and pulled.ok, phone.last_error
    assert phone.rejections == [], "an answer given under the old version validates against it"
    new = phone.get("survey", draft["id"])
    assert new is not None and new["is_active"] is True and new["version"] == 1
    assert new["script"].startswith("Hello") and new["outcomes"][0] == {"code": "spoke", "label": "Talked"}
    assert new["questions"][0]["translations"]["cy"]["text"] == "Sut byddwch chi'n pleidleisio?"
    assert new["translations"] == {"cy": {"script": "Helo, rwy'n galw ar ran yr ymgeisydd Gwyrdd."}}
    old = phone.get("survey", town.survey_id)
    assert old is not None and old["is_active"] is False

    # answers under the new version: every kind validates; a wrong one is refused
    phone.record_answer(address, "why_green", ["Parks", "Buses"], walk_list_id=town.lists[0], survey_id=draft["id"])
    phone.record_answer(address, "household", 3, walk_list_id=town.lists[0], survey_id=draft["id"])
    phone.record_answer(address, "household", 99, walk_list_id=town.lists[0], survey_id=draft["id"])
    phone.record_answer(address, "why_green", ["Trains"], walk_list_id=town.lists[0], survey_id=draft["id"])
    pushed, _ = await phone.sync()
    assert pushed.ok
    assert sorted(r.reason.split(":")[0] for r in phone.rejections) == ["invalid", "unsupported"]
    async with sessionmaker() as session:
        kept = {(a.survey_id, a.question_key): a.value for a in (await session.scalars(select(Answer))).all()}
    assert kept == {(town.survey_id, "vote"): "grn", (draft["id"], "why_green"): ["Parks", "Buses"], (draft["id"], "household"): 3}

    # a new phone's first pull gets only the active version; an archived one leaves phones
    fresh = await register_phone(client, world, "canvasser", world.campaign_a)
    assert (await fresh.pull()).ok
    # (it may also get the superseded version's last change, inactive, when that change is within its snapshot horizon)
    assert {i for i in fresh.ids("survey") if fresh.get("survey", i)["is_active"]} == {str(draft["id"])}  # type: ignore[index]
    await client.post(f"{base}/{draft['id']}/archive", headers=organiser)
    assert (await fresh.pull()).ok
    assert fresh.get("survey", draft["id"])["is_active"] is False  # type: ignore[index]


async def test_surveys_made_before_the_editor_are_listed(client: AsyncTestClient[Litestar], world: World, town: Town) -> None:
    """The sync tests' survey has no question texts and a `choices` list: the editor shows it all the same."""
    listed = await client.get(f"/api/campaigns/{world.campaign_a}/surveys", headers=world.auth("lead"))
    assert listed.status_code == 200, listed.text
    (survey,) = listed.json()
    assert (survey["status"], survey["is_active"]) == ("published", True)
    assert [(q["key"], q["text"], q["kind"]) for q in survey["questions"]] == [
        ("vote", "vote", "choice"), ("certainty", "certainty", "scale"), ("poster", "poster", "yes_no")]
    assert survey["questions"][0]["options"] == ["lab", "con", "grn"]
    # its next version starts as a copy, in the editor's shapes
    copy = await client.post(f"/api/campaigns/{world.campaign_a}/surveys/versions", json={"from_survey_id": survey["id"]}, headers=world.auth("organiser"))
    assert copy.status_code == 201, copy.text
    assert (copy.json()["version"], copy.json()["status"]) == (2, "draft")


async def test_an_answer_naming_a_draft_is_refused(client: AsyncTestClient[Litestar], world: World, town: Town) -> None:
    draft = (await client.post(f"/api/campaigns/{world.campaign_a}/surveys", json=doorstep(), headers=world.auth("organiser"))).json()
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    assert (await phone.pull()).ok
    phone.record_answer(town.addresses[town.lists[0]][0], "vote", "Green", walk_list_id=town.lists[0], survey_id=draft["id"])
    pushed, _ = await phone.sync()
    assert pushed.ok
    assert [r.reason.split(":")[0] for r in phone.rejections] == ["unknown"]
