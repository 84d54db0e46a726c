"""Organiser edits to a held list (re-route, reassignment) reach the phone on its next pull."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import WalkListStop
from tests.conftest import World
from tests.sync.conftest import Town, register_phone


async def test_rerouted_list_replaces_stops_on_the_phone(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """After a re-route the phone holds exactly the server's stops for the list, in the new order."""
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    assert (await phone.pull()).ok
    list_id = town.lists[0]
    before = {i for i in phone.ids("stop")}
    assert before, "the phone got no stops: test is vacuous"
    response = await client.post(f"/api/campaigns/{world.campaign_a}/walklists/{list_id}/reroute", headers=world.auth("organiser"))
    assert response.status_code == 200, response.text
    assert (await phone.pull()).ok
    async with sessionmaker() as session:
        server_stops = {str(i) for i in (await session.scalars(select(WalkListStop.id).where(WalkListStop.walk_list_id == list_id))).all()}
    assert set(phone.ids("stop")) == server_stops
    assert not (before & server_stops), "old stop ids should be gone"


async def test_reassignment_sends_remove_to_old_holder(
    client: AsyncTestClient[Litestar], world: World, town: Town
) -> None:
    """Reassigning through the organiser API takes the list off the first phone and gives it to the second."""
    first = await register_phone(client, world, "canvasser", world.campaign_a)
    assert (await first.pull()).ok
    list_id = town.lists[0]
    assert str(list_id) in set(first.ids("walk_list"))
    moved = await client.post(
        f"/api/campaigns/{world.campaign_a}/walklists/{list_id}/assign", json={"user_id": world.users["lead"]}, headers=world.auth("organiser")
    )
    assert moved.status_code == 200, moved.text
    assert (await first.pull()).ok
    assert str(list_id) not in set(first.ids("walk_list"))
    second = await register_phone(client, world, "lead", world.campaign_a)
    assert (await second.pull()).ok
    assert str(list_id) in set(second.ids("walk_list"))


def personal_ids_of(town: Town, list_id: int) -> tuple[set[str], set[str]]:
    """The address ids and person ids a list brings to a phone."""
    addresses = {str(a) for a in town.addresses[list_id]}
    people = {str(p) for a in town.addresses[list_id] for p in town.people[a]}
    return addresses, people


async def test_deleting_a_held_list_takes_its_addresses_and_people_off_the_phone(
    client: AsyncTestClient[Litestar], world: World, town: Town
) -> None:
    """Privacy: a deleted list's doors and electors do not stay on the phone that held it."""
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    assert (await phone.pull()).ok
    list_id = town.lists[0]
    addresses, people = personal_ids_of(town, list_id)
    assert addresses <= phone.ids("address") and people <= phone.ids("person"), "the phone never held the list"
    phone.record_contact(address_id=town.addresses[list_id][0], outcome="spoke", walk_list_id=list_id)
    assert (await phone.push()).ok and (await phone.pull()).ok
    assert phone.ids("contact_attempt")
    deleted = await client.delete(f"/api/campaigns/{world.campaign_a}/walklists/{list_id}", headers=world.auth("organiser"))
    assert deleted.status_code == 204, deleted.text
    assert (await phone.pull()).ok
    assert str(list_id) not in phone.ids("walk_list")
    assert not phone.ids("stop")
    assert not (addresses & phone.ids("address")), "the deleted list's addresses stayed on the phone"
    assert not (people & phone.ids("person")), "the deleted list's electors stayed on the phone"
    assert not phone.ids("contact_attempt")


async def test_merging_a_held_list_into_someone_elses_takes_its_people_off_the_phone(
    client: AsyncTestClient[Litestar], world: World, town: Town
) -> None:
    """Privacy: list L merged into M (assigned to another canvasser): L's holder keeps none of L's
    doors or electors, and M's holder gets them all."""
    held, other = town.lists
    assigned = await client.post(
        f"/api/campaigns/{world.campaign_a}/walklists/{other}/assign", json={"user_id": world.users["lead"]}, headers=world.auth("organiser")
    )
    assert assigned.status_code == 200, assigned.text
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    lead = await register_phone(client, world, "lead", world.campaign_a)
    assert (await phone.pull()).ok and (await lead.pull()).ok
    addresses, people = personal_ids_of(town, held)
    assert addresses <= phone.ids("address") and people <= phone.ids("person"), "the phone never held the list"
    merged = await client.post(
        f"/api/campaigns/{world.campaign_a}/walklists/merge", json={"walk_list_ids": [other, held]}, headers=world.auth("organiser")
    )
    assert merged.status_code == 200, merged.text
    assert (await phone.pull()).ok and (await lead.pull()).ok
    assert str(held) not in phone.ids("walk_list") and not phone.ids("stop")
    assert not (addresses & phone.ids("address")), "the merged list's addresses stayed on its old holder's phone"
    assert not (people & phone.ids("person")), "the merged list's electors stayed on its old holder's phone"
    assert addresses <= lead.ids("address") and people <= lead.ids("person")


async def test_splitting_a_held_list_takes_the_other_half_off_the_phone(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Privacy: after a held list is split, its holder keeps only the doors (and electors) of the
    half it still holds; the new half is nobody's yet."""
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    assert (await phone.pull()).ok
    list_id = town.lists[0]
    split = await client.post(f"/api/campaigns/{world.campaign_a}/walklists/{list_id}/split", json={"parts": 2}, headers=world.auth("organiser"))
    assert split.status_code == 200, split.text
    assert (await phone.pull()).ok
    async with sessionmaker() as session:
        kept = {str(a) for a in (await session.scalars(select(WalkListStop.address_id).where(WalkListStop.walk_list_id == list_id))).all()}
    assert kept and kept != {str(a) for a in town.addresses[list_id]}, "the split kept every door: test is vacuous"
    assert phone.ids("address") == kept
    assert phone.ids("person") == {str(p) for a in kept for p in town.people[int(a)]}
