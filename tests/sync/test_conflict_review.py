"""Organisers review conflicts and rejections; a resolution is a new edit that syncs to every phone."""

from __future__ import annotations

import asyncio

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import AuditEvent, Conflict
from tests.conftest import World
from tests.sync.conftest import Town, register_phone, two_phones_on_one_list


async def test_list_and_resolve_conflict(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Two concurrent edits leave one conflict; resolving writes the chosen value everywhere and closes it."""
    a, b = await two_phones_on_one_list(client, world, town, sessionmaker)
    address = town.addresses[town.lists[0]][1]
    a.edit_field("address", address, "access_note", "ring twice")
    await asyncio.sleep(0.005)
    b.edit_field("address", address, "access_note", "dog in garden")
    assert (await a.push()).ok and (await b.push()).ok
    base = f"/api/campaigns/{world.campaign_a}"
    listed = await client.get(f"{base}/conflicts", headers=world.auth("organiser"))
    assert listed.status_code == 200, listed.text
    [conflict] = listed.json()
    assert (conflict["losing_value"], conflict["winning_value"], conflict["current_value"]) == ("ring twice", "dog in garden", "dog in garden")
    assert (await client.get(f"{base}/conflicts", headers=world.auth("lead"))).status_code == 403
    resolved = await client.post(f"{base}/conflicts/{conflict['id']}/resolve", json={"value": "ring twice; dog in garden"}, headers=world.auth("organiser"))
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["current_value"] == "ring twice; dog in garden" and resolved.json()["resolved_by"] == world.users["organiser"]
    assert (await client.get(f"{base}/conflicts", headers=world.auth("organiser"))).json() == []
    again = await client.post(f"{base}/conflicts/{conflict['id']}/resolve", json={"value": "x"}, headers=world.auth("organiser"))
    assert again.status_code == 409
    for phone in (a, b):
        assert (await phone.pull()).ok
        assert phone.get("address", address)["access_note"] == "ring twice; dog in garden"  # type: ignore[index]
    async with sessionmaker() as session:
        assert (await session.scalars(select(Conflict))).all()[0].resolved_at is not None
        audits = (await session.scalars(select(AuditEvent).where(AuditEvent.resource == "conflicts"))).all()
        assert audits and audits[0].row_count == 1


async def test_rejections_are_listed_with_reasons(
    client: AsyncTestClient[Litestar], world: World, town: Town
) -> None:
    """A mutation the server can never apply shows up for organisers with its reason."""
    a = await register_phone(client, world, "canvasser", world.campaign_a)
    await a.pull()
    a.record_contact(address_id=987654321, outcome="spoke")
    assert (await a.push()).ok
    rejections = (await client.get(f"/api/campaigns/{world.campaign_a}/rejections", headers=world.auth("organiser"))).json()
    assert len(rejections) == 1 and "987654321" in rejections[0]["reason"]
    assert rejections[0]["user_id"] == world.users["canvasser"]


async def test_review_queue_reapply_edit_then_apply_and_dismiss_kept_mutations(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Rejections sit with conflicts in one queue; each can be re-applied, edited then applied, or dismissed, audited."""
    from server.db.models import Answer, ContactAttempt

    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    await phone.pull()
    theirs = town.addresses[town.lists[1]][0]
    mine = town.addresses[town.lists[0]][0]
    outside = phone.record_contact(theirs, "spoke")  # out of scope
    newer = phone.record_answer(mine, "vote", "reform", survey_id=town.survey_id)  # a newer app's choice
    junk = phone.record_contact(987654321, "spoke")  # unknown address
    assert (await phone.push()).ok and len(phone.rejections) == 3
    base = f"/api/campaigns/{world.campaign_a}"
    assert (await client.get(f"{base}/review", headers=world.auth("canvasser"))).status_code == 403
    queue = await client.get(f"{base}/review", headers=world.auth("organiser"))
    assert queue.status_code == 200, queue.text
    items = {i["payload"].get("id"): i for i in queue.json() if i["kind"] == "rejection"}
    assert set(items) == {str(outside.id), str(newer.id), str(junk.id)}
    assert items[str(newer.id)]["reason"].startswith("unsupported:") and items[str(newer.id)]["user_id"] == world.users["canvasser"]
    applied = await client.post(f"{base}/review/rejections/{items[str(outside.id)]['id']}/apply", json={}, headers=world.auth("organiser"))
    assert applied.status_code == 200, applied.text
    assert applied.json()["review"] == "applied"
    edited_payload = {**items[str(newer.id)]["payload"], "value": "lab"}
    edited = await client.post(f"{base}/review/rejections/{items[str(newer.id)]['id']}/apply",
                               json={"mutation": edited_payload}, headers=world.auth("organiser"))
    assert edited.status_code == 200, edited.text
    still_bad = await client.post(f"{base}/review/rejections/{items[str(junk.id)]['id']}/apply", json={}, headers=world.auth("organiser"))
    assert still_bad.status_code == 422
    dismissed = await client.post(f"{base}/review/rejections/{items[str(junk.id)]['id']}/dismiss", headers=world.auth("organiser"))
    assert dismissed.status_code == 200 and dismissed.json()["review"] == "dismissed"
    again = await client.post(f"{base}/review/rejections/{items[str(junk.id)]['id']}/dismiss", headers=world.auth("organiser"))
    assert again.status_code == 409
    assert [i for i in (await client.get(f"{base}/review", headers=world.auth("organiser"))).json() if i["kind"] == "rejection"] == []
    async with sessionmaker() as session:
        assert await session.get(ContactAttempt, str(outside.id)) is not None
        answer = await session.get(Answer, str(newer.id))
        assert answer is not None and answer.value == "lab"
        actions = [(a.action, a.resource) for a in (await session.scalars(select(AuditEvent).where(AuditEvent.action.like("review%")))).all()]
    assert ("review_apply", f"held:{items[str(outside.id)]['id']}") in actions
    assert ("review_dismiss", f"held:{items[str(junk.id)]['id']}") in actions
    assert any(a == "review_read" for a, _ in actions)
