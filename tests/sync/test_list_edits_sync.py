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
