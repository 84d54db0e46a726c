"""Sync test harness: the real app (with the sync routes), a small canvassing world, phones.

Every fixture here builds on tests/conftest.py, so each test runs on SQLite
and PostgreSQL through Litestar's AsyncTestClient.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import create_app
from server.db.models import Address, Assignment, Person, Survey, WalkList, WalkListStop
from server.settings import Settings
from server.sync.controllers import SyncController
from sync.client import SyncClient, TransportError
from sync.clock import HybridClock
from tests.conftest import World

Transport = Callable[[str, str, bytes, dict[str, str]], Awaitable[tuple[int, bytes]]]


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The real app; the sync routes are registered if the app factory does not include them yet."""
    application = create_app(settings)
    if not any(route.path == "/api/sync/push" for route in application.routes):
        application.register(SyncController)
    return application


def app_transport(client: AsyncTestClient[Litestar]) -> Transport:
    """A SyncClient transport over Litestar's test client."""

    async def transport(
        method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        response = await client.request(method, path, content=body or None, headers=headers)
        return response.status_code, response.content

    return transport


class LossyNetwork:
    """Wraps a transport: drops requests, drops responses after the server acted, duplicates requests."""

    def __init__(
        self, inner: Transport, rng: random.Random, loss: float = 0.2, dup: float = 0.1
    ) -> None:
        self.inner, self.rng, self.loss, self.dup = inner, rng, loss, dup
        self.enabled = True
        self.delayed: list[tuple[str, str, bytes, dict[str, str]]] = []

    async def __call__(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        if not self.enabled:
            return await self.inner(method, path, body, headers)
        roll = self.rng.random()
        if roll < self.loss / 2:
            raise TransportError("request lost")
        if self.rng.random() < self.dup:
            self.delayed.append((method, path, body, headers))  # delivered again later (reordered)
        result = await self.inner(method, path, body, headers)
        if roll < self.loss:
            raise TransportError("response lost")
        return result

    async def deliver_delayed(self) -> None:
        """Deliver the duplicated requests late, in shuffled order (their responses are lost)."""
        pending, self.delayed = self.delayed, []
        self.rng.shuffle(pending)
        for request in pending:
            await self.inner(*request)


@dataclass
class Town:
    """A campaign with two walk lists of addresses and electors, a survey, and registered phones."""

    world: World
    lists: list[int] = field(default_factory=list)
    addresses: dict[int, list[int]] = field(default_factory=dict)  # list id -> address ids
    people: dict[int, list[int]] = field(default_factory=dict)  # address id -> person ids
    other_campaign_address: int = 0
    survey_id: int = 0


async def make_town(
    sessionmaker: async_sessionmaker[AsyncSession], world: World, doors_per_list: int = 4
) -> Town:
    """Arrange two walk lists in campaign A (list 0 assigned to the canvasser) and an address in B."""
    town = Town(world=world)
    async with sessionmaker() as session:
        survey = Survey(
            campaign_id=world.campaign_a,
            name="Doorstep",
            version=1,
            questions=[
                {"key": "vote", "kind": "choice", "choices": ["lab", "con", "grn"]},
                {"key": "certainty", "kind": "scale", "min": 1, "max": 10},
                {"key": "poster", "kind": "yes_no"},
            ],
        )
        session.add(survey)
        for n in range(2):
            walk_list = WalkList(
                campaign_id=world.campaign_a,
                name=f"List {n}",
                status="assigned",
                doors=doors_per_list,
            )
            session.add(walk_list)
            await session.flush()
            town.lists.append(walk_list.id)
            town.addresses[walk_list.id] = []
            for d in range(doors_per_list):
                address = Address(
                    campaign_id=world.campaign_a,
                    lines=[f"{d + 1} Mill Road"],
                    postcode="AB1 2CD",
                    lon=-1.5 + d * 0.001,
                    lat=52.0 + n * 0.01,
                    building_key=f"b{n}-{d}",
                    street="Mill Road",
                    house_number=str(d + 1),
                )
                session.add(address)
                await session.flush()
                town.addresses[walk_list.id].append(address.id)
                session.add(
                    WalkListStop(
                        walk_list_id=walk_list.id, address_id=address.id, stop_number=d, position=d
                    )
                )
                people = []
                for p in range(2):
                    person = Person(
                        campaign_id=world.campaign_a,
                        address_id=address.id,
                        surname=f"Surname{d}{p}",
                        forenames="Alex",
                        elector_number=100 * n + 10 * d + p,
                        phone=None,
                    )
                    session.add(person)
                    await session.flush()
                    people.append(person.id)
                town.people[address.id] = people
        session.add(Assignment(walk_list_id=town.lists[0], user_id=world.users["canvasser"]))
        other = Address(
            campaign_id=world.campaign_b,
            lines=["1 Elsewhere"],
            postcode="ZZ1 1ZZ",
            lon=0.0,
            lat=51.0,
            building_key="x",
            street="Elsewhere",
            house_number="1",
        )
        session.add(other)
        await session.flush()
        town.other_campaign_address = other.id
        town.survey_id = survey.id
        await session.commit()
    return town


async def register_phone(
    client: AsyncTestClient[Litestar],
    world: World,
    who: str,
    campaign_id: int,
    transport: Transport | None = None,
    **kwargs,
) -> SyncClient:  # type: ignore[no-untyped-def]
    """Register a device for a user through the API and return a reference client for it."""
    response = await client.post(
        f"/api/campaigns/{campaign_id}/devices",
        json={"name": f"{who}'s phone"},
        headers=world.auth(who),
    )
    assert response.status_code == 201, response.text
    token = response.json()
    clock = HybridClock(token["node_id"])
    return SyncClient(
        token["node_id"], token["token"], transport or app_transport(client), clock, **kwargs
    )


async def two_phones_on_one_list(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> tuple[SyncClient, SyncClient]:
    """The canvasser's and the organiser's phones, both holding list 0 (assigned to both) after a first pull."""
    async with sessionmaker() as session:
        session.add(Assignment(walk_list_id=town.lists[0], user_id=world.users["organiser"]))
        await session.commit()
    canvasser = await register_phone(client, world, "canvasser", world.campaign_a)
    organiser = await register_phone(client, world, "organiser", world.campaign_a)
    await canvasser.pull()
    await organiser.pull()
    return canvasser, organiser


@pytest.fixture
async def town(sessionmaker: async_sessionmaker[AsyncSession], world: World) -> Town:
    """The arranged town."""
    return await make_town(sessionmaker, world)
