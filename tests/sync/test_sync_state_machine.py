"""Hypothesis-driven sync runs: generated action plans over phones on a lossy network, real app and database.

Each example builds a fresh world in the test database (SQLite and PostgreSQL),
runs the plan through reference clients whose network drops requests and
responses, duplicates and reorders them, heals the network, and checks that
everything converged and no write was lost. Hypothesis shrinks a failing plan
to a minimal one.
"""

from __future__ import annotations

import asyncio
import random

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from server.accounts.security import build_jwt_auth
from server.accounts.services import AccountService
from server.app import create_app
from server.campaigns.schemas import CampaignCreate
from server.campaigns.services import create_campaign
from server.db.models import (
    Address,
    Answer,
    Assignment,
    Conflict,
    ContactAttempt,
    Observation,
    Person,
    Role,
)
from server.db.session import create_engine_for, create_sessionmaker
from server.settings import Settings
from server.sync.controllers import SyncController
from sync.client import SyncClient
from sync.merge import conflict_losers, fold_field_edits
from sync.protocol import EditField
from tests.conftest import TEST_PASSWORD, World, truncate_all
from tests.sync.conftest import LossyNetwork, app_transport, make_town, register_phone

ACTIONS = [
    "contact",
    "answer",
    "edit_person",
    "edit_address",
    "dnv",
    "push",
    "pull",
    "sync",
    "restart",
    "replay",
]
plans = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(ACTIONS), st.integers(0, 3), st.integers(0, 2)),
    min_size=1,
    max_size=25,
)


async def run_plan(
    app_settings: Settings, plan: list[tuple[int, str, int, int]], seed: int
) -> None:
    await truncate_all(app_settings.database_url)
    app = create_app(app_settings)
    if not any(route.path == "/api/sync/push" for route in app.routes):
        app.register(SyncController)
    engine = create_engine_for(app_settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with AsyncTestClient(app=app) as client:
            jwt_auth = build_jwt_auth(app_settings.secret_key, app_settings.access_token_minutes)
            async with sessionmaker() as session:
                accounts = AccountService(session, app_settings, jwt_auth)
                a = await create_campaign(session, CampaignCreate(name="A", slug="a"), None)
                b = await create_campaign(session, CampaignCreate(name="B", slug="b"), None)
                world = World(campaign_a=a.id, campaign_b=b.id)
                for name, role in (("canvasser", Role.canvasser), ("organiser", Role.organiser)):
                    user = await accounts.create_user(f"{name}@example.org", name, TEST_PASSWORD)
                    await accounts.add_member(user, a.id, role)
                    world.users[name] = user.id
                await session.commit()
            for name in world.users:
                response = await client.post(
                    "/api/auth/login",
                    json={"email": f"{name}@example.org", "password": TEST_PASSWORD},
                )
                world.tokens[name] = response.json()["access_token"]
            town = await make_town(sessionmaker, world, doors_per_list=4)
            list_id = town.lists[0]
            async with sessionmaker() as session:
                session.add(Assignment(walk_list_id=list_id, user_id=world.users["organiser"]))
                await session.commit()
            rng = random.Random(seed)
            network = LossyNetwork(app_transport(client), rng, loss=0.3, dup=0.2)
            phones: list[SyncClient] = []
            for who in ("canvasser", "canvasser", "organiser"):
                phones.append(
                    await register_phone(
                        client,
                        world,
                        who,
                        world.campaign_a,
                        transport=network,
                        rng=random.Random(seed),
                        page_limit=3,
                        batch_size=3,
                    )
                )
            network.enabled = False
            for phone in phones:
                assert (await phone.pull()).ok
            network.enabled = True

            addresses = town.addresses[list_id]
            edits: list[EditField] = []
            event_ids: set[str] = set()
            for index, action, x, y in plan:
                phone = phones[index]
                address = addresses[x]
                person = town.people[address][y % 2]
                if action == "contact":
                    event_ids.add(str(phone.record_contact(address, "spoke", person_id=person).id))
                elif action == "answer":
                    event_ids.add(
                        str(
                            phone.record_answer(  # one value of each kind the survey has
                                address, *[("vote", "lab"), ("certainty", 2), ("poster", True)][y], person_id=person
                            ).id
                        )
                    )
                elif action == "edit_person":
                    edits.append(phone.edit_field("person", person, "phone", ["a", "b", None][y]))
                elif action == "edit_address":
                    edits.append(
                        phone.edit_field("address", address, "access_note", ["x", "y", "z"][y])
                    )
                elif action == "dnv":
                    event_ids.add(
                        str(phone.record_observation(address, "do_not_visit", person_id=person).id)
                    )
                elif action == "push":
                    await phone.push()
                elif action == "pull":
                    await phone.pull()
                elif action == "sync":
                    await phone.sync()
                elif action == "restart":
                    phones[index] = SyncClient.from_state(
                        phone.to_state(),
                        phone.token,
                        network,
                        rng=random.Random(seed),
                        page_limit=3,
                        batch_size=3,
                    )
                elif action == "replay":
                    await network.deliver_delayed()

            network.enabled = False
            await network.deliver_delayed()
            for _ in range(2):
                for phone in phones:
                    pushed, pulled = await phone.sync()
                    assert pushed.ok and pulled is not None and pulled.ok, phone.last_error

            for phone in phones:
                assert (
                    phone.outbox == []
                    and phone.rejections == []
                    and phone.state.pending_edits == []
                )
            by_field: dict[tuple[str, int, str], list[EditField]] = {}
            for edit in edits:
                by_field.setdefault((edit.entity, edit.entity_id, edit.field), []).append(edit)
            async with sessionmaker() as session:
                stored: set[str] = set()
                for model in (ContactAttempt, Answer, Observation):
                    stored |= set(await session.scalars(select(model.id)))
                assert event_ids <= stored
                losers: set[str] = set()
                for (entity, entity_id, field), field_edits in by_field.items():
                    state = fold_field_edits(field_edits)
                    assert state is not None
                    row = await session.get(Person if entity == "person" else Address, entity_id)
                    assert getattr(row, field) == state.value
                    for phone in phones:
                        assert phone.get(entity, entity_id)[field] == state.value  # type: ignore[index]
                    losers |= {c.hlc for c in conflict_losers(state)}
                assert (
                    set(
                        await session.scalars(
                            select(Conflict.losing_hlc).where(Conflict.resolved_at.is_(None))
                        )
                    )
                    == losers
                )
            reference = phones[0]
            for phone in phones[1:]:
                for entity in ("contact_attempt", "answer", "observation"):
                    assert set(phone.events(entity)) == set(reference.events(entity))
                assert {k: v.do_not_visit for k, v in phone.flags().items()} == {
                    k: v.do_not_visit for k, v in reference.flags().items()
                }
    finally:
        await engine.dispose()


@hypothesis_settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=plans, seed=st.integers(0, 10_000))
def test_generated_plans_converge_without_loss(
    settings: Settings, plan: list[tuple[int, str, int, int]], seed: int
) -> None:
    asyncio.run(run_plan(settings, plan, seed))
