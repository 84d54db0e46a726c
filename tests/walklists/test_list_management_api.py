"""Lists API: split, merge, delete (work kept), re-knock the not-homes, do-not-knock doors marked and skipped.

Each change reaches a phone through sync as reassignment does. Demo town, real app, SQLite and PostgreSQL.
"""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Address, ContactAttempt, WalkListStop
from sync.client import SyncClient
from tests.test_retention import phone_for
from tests.test_walklists_api import Demo, cut, make_target

pytest_plugins = ["tests.test_walklists_api"]  # the `demo` fixture


async def server_stops(sessionmaker: async_sessionmaker[AsyncSession], list_id: int) -> set[str]:
    """Stop ids the server holds for a list."""
    async with sessionmaker() as session:
        return {str(i) for i in (await session.scalars(select(WalkListStop.id).where(WalkListStop.walk_list_id == list_id))).all()}


def phone_stops(phone: SyncClient, list_id: int) -> set[str]:
    """Stop ids of one list on a phone."""
    return {i for i in phone.ids("stop") if (phone.get("stop", i) or {}).get("walk_list_id") == list_id}


async def assign(client: AsyncTestClient[Litestar], demo: Demo, list_id: int, who: str) -> None:
    response = await client.post(f"/api/campaigns/{demo.campaign_id}/walklists/{list_id}/assign", json={"user_id": demo.users[who]},
                                 headers=demo.headers["organiser"])
    assert response.status_code == 200, response.text


async def test_split_and_merge_reach_the_phones(client: AsyncTestClient[Litestar], demo: Demo, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Split: the holder's phone gets the kept part's stops. Merge: the first list's holder gets every door; the other's holder loses it."""
    target_id = await make_target(client, demo, sessionmaker, share=0.4)
    ids = await cut(client, demo, target_id, size=30)
    stops = {w["id"]: w["stops"] for w in (await client.get(f"/api/campaigns/{demo.campaign_id}/walklists", headers=demo.headers["organiser"])).json()}
    first = max(ids, key=lambda i: stops[i])  # several buildings, so it can be split
    second, third = [i for i in ids if i != first][:2]
    await assign(client, demo, first, "canvasser")
    await assign(client, demo, third, "canvasser2")
    phone = await phone_for(client, demo.campaign_id, "canvasser@demo.canvass")
    other = await phone_for(client, demo.campaign_id, "canvasser2@demo.canvass")
    assert (await phone.pull()).ok and (await other.pull()).ok
    assert phone_stops(phone, first) == await server_stops(sessionmaker, first) != set()

    split = await client.post(f"/api/campaigns/{demo.campaign_id}/walklists/{first}/split", json={"parts": 2}, headers=demo.headers["organiser"])
    assert split.status_code == 200, split.text
    assert split.json()[0]["id"] == first and len(split.json()) == 2
    assert (await phone.pull()).ok
    assert phone_stops(phone, first) == await server_stops(sessionmaker, first)
    assert str(split.json()[1]["id"]) not in phone.ids("walk_list")  # the new half is nobody's yet

    merged = await client.post(f"/api/campaigns/{demo.campaign_id}/walklists/merge", json={"walk_list_ids": [first, second, third]},
                               headers=demo.headers["organiser"])
    assert merged.status_code == 200, merged.text
    assert (await phone.pull()).ok and (await other.pull()).ok
    assert phone_stops(phone, first) == await server_stops(sessionmaker, first)
    assert str(third) not in other.ids("walk_list") and not phone_stops(other, third)


async def test_delete_keeps_recorded_work_and_leaves_the_phone(
    client: AsyncTestClient[Litestar], demo: Demo, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Deleting an assigned list takes it (and its stops) off the phone; the knocks recorded on it stay and still count."""
    target_id = await make_target(client, demo, sessionmaker, share=0.3)
    first, *_ = await cut(client, demo, target_id)
    await assign(client, demo, first, "canvasser")
    phone = await phone_for(client, demo.campaign_id, "canvasser@demo.canvass")
    assert (await phone.pull()).ok
    door = phone.get("stop", sorted(phone_stops(phone, first))[0])["address_id"]
    phone.record_contact(address_id=door, outcome="spoke", walk_list_id=first)
    assert (await phone.push()).ok
    deleted = await client.delete(f"/api/campaigns/{demo.campaign_id}/walklists/{first}", headers=demo.headers["organiser"])
    assert deleted.status_code == 204, deleted.text
    assert (await phone.pull()).ok
    assert str(first) not in phone.ids("walk_list") and not phone_stops(phone, first)
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ContactAttempt).where(ContactAttempt.walk_list_id == first)) == 1
    progress = (await client.get(f"/api/campaigns/{demo.campaign_id}/results/progress", headers=demo.headers["organiser"])).json()
    assert any(row["id"] == first and row["attempts"] == 1 for row in progress["walk_lists"]), progress["walk_lists"]
    gone = await client.get(f"/api/campaigns/{demo.campaign_id}/walklists/{first}", headers=demo.headers["organiser"])
    assert gone.status_code == 404


async def test_reknock_makes_a_list_of_the_not_homes(
    client: AsyncTestClient[Litestar], demo: Demo, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A door whose latest outcome is not_home or come_back goes on the re-knock list; answered and do-not-knock doors do not."""
    target_id = await make_target(client, demo, sessionmaker, share=0.3)
    first, *_ = await cut(client, demo, target_id)
    base = f"/api/campaigns/{demo.campaign_id}/walklists"
    stops = (await client.get(f"{base}/{first}", headers=demo.headers["organiser"])).json()["stops"]
    doors = [s["address_id"] for s in stops]
    assert len(doors) >= 6
    entries = [
        {"address_id": doors[0], "outcome": "not_home"},
        {"address_id": doors[1], "outcome": "spoke"},
        {"address_id": doors[2], "outcome": "come_back"},
        {"address_id": doors[3], "outcome": "not_home"},
        {"address_id": doors[3], "outcome": "spoke"},  # answered on the second knock
        {"address_id": doors[4], "outcome": "not_home"},
    ]
    keyed = await client.post(f"{base}/{first}/paper-results", json={"sheet_id": "round-1", "entries": entries}, headers=demo.headers["organiser"])
    assert keyed.status_code == 200 and keyed.json()["applied"] == len(entries), keyed.text
    await assign(client, demo, first, "canvasser")
    phone = await phone_for(client, demo.campaign_id, "canvasser@demo.canvass")
    assert (await phone.pull()).ok
    phone.record_observation(address_id=doors[4], kind="do_not_visit")
    assert (await phone.push()).ok

    response = await client.post(f"{base}/reknock", json={"walk_list_ids": [first]}, headers=demo.headers["organiser"])
    assert response.status_code == 200, response.text
    new_lists = response.json()
    assert new_lists and all(w["id"] != first for w in new_lists)
    async with sessionmaker() as session:
        on_new = set((await session.scalars(select(WalkListStop.address_id).where(WalkListStop.walk_list_id.in_([w["id"] for w in new_lists])))).all())
    assert on_new == {doors[0], doors[2]}
    assert "re-knock" in new_lists[0]["name"]
    await assign(client, demo, new_lists[0]["id"], "canvasser")
    assert (await phone.pull()).ok
    assert str(new_lists[0]["id"]) in phone.ids("walk_list")
    assert phone_stops(phone, new_lists[0]["id"]) == await server_stops(sessionmaker, new_lists[0]["id"])

    second_round = [{"address_id": doors[0], "outcome": "spoke"}, {"address_id": doors[2], "outcome": "refused"}]
    keyed = await client.post(f"{base}/{new_lists[0]['id']}/paper-results", json={"sheet_id": "round-2", "entries": second_round},
                              headers=demo.headers["organiser"])
    assert keyed.status_code == 200, keyed.text
    nothing = await client.post(f"{base}/reknock", json={"walk_list_ids": [first, new_lists[0]["id"]]}, headers=demo.headers["organiser"])
    assert nothing.status_code == 422 and "not_home" in nothing.json()["detail"]


async def test_do_not_knock_doors_are_marked_and_skipped(
    client: AsyncTestClient[Litestar], demo: Demo, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A door flagged do-not-visit after the cut stays in order but is marked to skip, counted on the list, and said so on the sheet."""
    target_id = await make_target(client, demo, sessionmaker, share=0.3)
    first, *_ = await cut(client, demo, target_id)
    base = f"/api/campaigns/{demo.campaign_id}/walklists/{first}"
    await assign(client, demo, first, "canvasser")
    phone = await phone_for(client, demo.campaign_id, "canvasser@demo.canvass")
    assert (await phone.pull()).ok
    stops = (await client.get(base, headers=demo.headers["organiser"])).json()["stops"]
    flagged = stops[1]["address_id"]
    phone.record_observation(address_id=flagged, kind="do_not_visit")
    assert (await phone.push()).ok
    detail = (await client.get(base, headers=demo.headers["organiser"])).json()
    assert [s["skip"] for s in detail["stops"]] == [s["address_id"] == flagged for s in detail["stops"]]
    assert detail["summary"]["do_not_knock"] == 1
    listed = (await client.get(f"/api/campaigns/{demo.campaign_id}/walklists", headers=demo.headers["organiser"])).json()
    assert next(w for w in listed if w["id"] == first)["do_not_knock"] == 1
    # The organiser's map shows the skipped door (a point, no address text) and where the list starts.
    route = next(f for f in (await client.get(f"/api/campaigns/{demo.campaign_id}/walklists/map", headers=demo.headers["organiser"])).json()["features"]
                 if f["properties"]["id"] == first)["properties"]
    skipped = next(s for s in stops if s["address_id"] == flagged)
    assert route["skipped"] == [[round(skipped["lon"], 6), round(skipped["lat"], 6)]]
    assert route["start"] == [round(stops[0]["lon"], 6), round(stops[0]["lat"], 6)] and route["do_not_knock"] == 1


async def test_walk_sheet_lists_flats_names_streets_and_has_answer_boxes(
    client: AsyncTestClient[Litestar], demo: Demo, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The sheet of a list with a block of flats names each flat under its building, draws the streets' names and boxes the survey's short answers."""
    from tests.walklists.test_walksheet import pdf_text

    target_id = await make_target(client, demo, sessionmaker, share=0.4)
    ids = await cut(client, demo, target_id, size=40)
    async with sessionmaker() as session:
        rows = (await session.execute(
            select(WalkListStop.walk_list_id, Address.flat, Address.street).join(Address, Address.id == WalkListStop.address_id)
            .where(WalkListStop.walk_list_id.in_(ids))
        )).all()
    with_flats = next(list_id for list_id, flat, _ in rows if flat)
    flats = sorted({flat for list_id, flat, _ in rows if list_id == with_flats and flat})
    streets = {street for list_id, _, street in rows if list_id == with_flats and street}
    pdf = await client.get(f"/api/campaigns/{demo.campaign_id}/walklists/{with_flats}/sheet.pdf", headers=demo.headers["organiser"])
    assert pdf.status_code == 200
    text = pdf_text(pdf.content)
    for flat in flats:
        assert f"({flat})".encode() in text, flat
    assert any(street.encode() in text for street in streets)
    assert b"Q1 = " in text and b"\\(Y/N\\)" in text, re.findall(rb".{60}Q1.{60}", text)
