"""The paper key-in form's API: the sheet's rows in the sheet's order, and what its boxes record.

Keyed through the same endpoint and merge as phones; demo town, real app, SQLite and PostgreSQL.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Address, Answer, AuditEvent, ContactAttempt, WalkListStop
from tests.test_walklists_api import Demo, cut, make_target

pytest_plugins = ["tests.test_walklists_api"]  # the `demo` fixture


async def list_with_flats(client: AsyncTestClient[Litestar], demo: Demo, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    target_id = await make_target(client, demo, sessionmaker, share=0.4)
    ids = await cut(client, demo, target_id, size=40)
    async with sessionmaker() as session:
        rows = (await session.execute(
            select(WalkListStop.walk_list_id, Address.flat).join(Address, Address.id == WalkListStop.address_id).where(WalkListStop.walk_list_id.in_(ids))
        )).all()
    return next(list_id for list_id, flat in rows if flat)


async def test_form_follows_the_sheet_and_its_boxes_record_answers(
    client: AsyncTestClient[Litestar], demo: Demo, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Rows come in walking order with each block of flats as one numbered building over its flats; codes and boxes map to what phones record."""
    list_id = await list_with_flats(client, demo, sessionmaker)
    base = f"/api/campaigns/{demo.campaign_id}/walklists/{list_id}"
    detail = (await client.get(base, headers=demo.headers["organiser"])).json()
    response = await client.get(base + "/paper-form", headers=demo.headers["organiser"])
    assert response.status_code == 200, response.text
    form = response.json()
    doors = [r for r in form["rows"] if r["kind"] == "door"]
    assert [r["address_id"] for r in doors] == [s["address_id"] for s in detail["stops"]]  # the sheet's (walking) order
    buildings = [r for r in form["rows"] if r["kind"] == "building"]
    assert buildings and all("flats" in b["address"] or "doors" in b["address"] for b in buildings)
    assert any(r["number"] == "" and r["address"].startswith("Flat ") for r in doors)
    numbers = [int(r["number"]) for r in form["rows"] if r["number"]]
    assert numbers == sorted(numbers) and numbers[0] == 1  # stop numbers never jump back
    assert {(c["code"], c["outcome"]) for c in form["outcomes"]} >= {("S", "spoke"), ("NI", "not_home"), ("CB", "come_back"), ("DNK", "do_not_visit")}
    questions = {q["key"]: q for q in form["questions"]}
    assert "notes" not in questions  # free text goes on the back
    assert questions["postal_vote"]["entries"] == {"Y": "Yes", "N": "No"}
    assert questions["voting_intention"]["entries"]["2"] == "Blue"
    assert questions["likelihood_to_vote"]["entries"]["10"] == "10"

    # What the form sends for "S, Q1=2, postal vote Y" on the first door and "NI" on the second.
    first, second = doors[0]["address_id"], doors[1]["address_id"]
    entries = [
        {"address_id": first, "outcome": "spoke", "answers": {"voting_intention": questions["voting_intention"]["entries"]["2"],
                                                             "postal_vote": questions["postal_vote"]["entries"]["Y"]}},
        {"address_id": second, "outcome": "not_home"},
    ]
    keyed = (await client.post(base + "/paper-results", json={"sheet_id": "form-1", "entries": entries}, headers=demo.headers["organiser"])).json()
    assert keyed == {"applied": 4, "duplicates": 0, "rejected": []}
    async with sessionmaker() as session:
        outcomes = dict((await session.execute(select(ContactAttempt.address_id, ContactAttempt.outcome).where(ContactAttempt.walk_list_id == list_id))).all())
        answers = {a.question_key: a.value for a in (await session.scalars(select(Answer).where(Answer.address_id == first))).all()}
        audited = (await session.scalars(select(AuditEvent.resource).where(AuditEvent.resource == f"walk_list:{list_id}"))).all()
    assert outcomes == {first: "spoke", second: "not_home"}
    assert set(answers) == {"voting_intention", "postal_vote"}
    assert audited  # the form names electors: its read is audited


async def test_form_is_for_organisers(client: AsyncTestClient[Litestar], demo: Demo, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A canvasser cannot open the key-in form, even of a list assigned to them."""
    target_id = await make_target(client, demo, sessionmaker, share=0.3)
    first, *_ = await cut(client, demo, target_id)
    base = f"/api/campaigns/{demo.campaign_id}/walklists/{first}"
    await client.post(base + "/assign", json={"user_id": demo.users["canvasser"]}, headers=demo.headers["organiser"])
    assert (await client.get(base + "/paper-form", headers=demo.headers["canvasser"])).status_code == 403
    assert (await client.get(f"/api/campaigns/{demo.campaign_id}/walklists/999999/paper-form", headers=demo.headers["organiser"])).status_code == 404


async def test_printed_sheet_read_with_pypdf_matches_the_form(
    client: AsyncTestClient[Litestar], demo: Demo, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The PDF sheet, read back with pypdf, lists the form's rows in the same order (flats by number under their building),
    heads a column per short answer, names streets on its map and never says to write answers on the back."""
    import io
    import re

    from pypdf import PdfReader

    list_id = await list_with_flats(client, demo, sessionmaker)
    base = f"/api/campaigns/{demo.campaign_id}/walklists/{list_id}"
    form = (await client.get(base + "/paper-form", headers=demo.headers["organiser"])).json()
    pdf = await client.get(base + "/sheet.pdf", headers=demo.headers["organiser"])
    assert pdf.status_code == 200
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages]
    flat = lambda text: re.sub(r"\s+", " ", text)  # noqa: E731 - reportlab wraps long cells
    table = flat(" ".join(pages[1:]))
    at = 0
    for row in form["rows"]:
        found = table.find(flat(row["address"]), at)
        assert found >= 0, (row, table[at : at + 300])
        at = found + len(flat(row["address"]))
    building = next(r for r in form["rows"] if r["kind"] == "building")
    assert re.search(r"\(\d+ flats\)", building["address"])
    assert " ".join(["Outcome", *[q["label"] for q in form["questions"]]]) in table
    for question in form["questions"]:
        assert f"{question['label']} = {question['text']}" in table
    async with sessionmaker() as session:
        streets = set((await session.scalars(
            select(Address.street).join(WalkListStop, WalkListStop.address_id == Address.id).where(WalkListStop.walk_list_id == list_id)
        )).all())
    assert any(street and street in pages[0] for street in streets), pages[0][:500]  # street names on the map
    assert "write answers on the back" not in flat(" ".join(pages)).lower()


async def test_paper_and_phone_results_merge_as_one(client: AsyncTestClient[Litestar], demo: Demo, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A door a phone found not at home, keyed from paper as spoken to later, counts once, with the paper's outcome as its latest."""
    from tests.test_retention import phone_for

    target_id = await make_target(client, demo, sessionmaker, share=0.3)
    first, *_ = await cut(client, demo, target_id)
    base = f"/api/campaigns/{demo.campaign_id}/walklists/{first}"
    await client.post(base + "/assign", json={"user_id": demo.users["canvasser"]}, headers=demo.headers["organiser"])
    doors = [r["address_id"] for r in (await client.get(base + "/paper-form", headers=demo.headers["organiser"])).json()["rows"]
             if r["kind"] == "door" and not r["skip"]]
    phone = await phone_for(client, demo.campaign_id, "canvasser@demo.canvass")
    assert (await phone.pull()).ok
    for door in doors[:2]:
        phone.record_contact(address_id=door, outcome="not_home", walk_list_id=first)
    assert (await phone.push()).ok
    keyed = await client.post(base + "/paper-results", json={"entries": [{"address_id": doors[0], "outcome": "spoke", "answers": {"postal_vote": "Yes"}}]},
                              headers=demo.headers["organiser"])
    assert keyed.json() == {"applied": 2, "duplicates": 0, "rejected": []}
    progress = (await client.get(f"/api/campaigns/{demo.campaign_id}/results/progress", headers=demo.headers["organiser"])).json()["campaign"]
    assert (progress["doors_knocked"], progress["attempts"], progress["outcomes"]["spoke"], progress["outcomes"]["not_home"]) == (2, 3, 1, 2)
    # Re-knocking the not-homes leaves out the door paper says was spoken to.
    reknock = await client.post(f"/api/campaigns/{demo.campaign_id}/walklists/reknock", json={"walk_list_ids": [first]}, headers=demo.headers["organiser"])
    assert reknock.status_code == 200, reknock.text
    again = reknock.json()[0]["id"]
    stops = {s["address_id"] for s in (await client.get(f"/api/campaigns/{demo.campaign_id}/walklists/{again}", headers=demo.headers["organiser"])).json()["stops"]}
    assert stops == {doors[1]}
