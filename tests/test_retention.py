"""Retention end to end: demo town, phones canvass and sync, polling day passes, `canvass retention run`, phones purge.

Runs on SQLite and PostgreSQL through the shared fixtures and the real app.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import create_app
from server.db.models import (
    Address,
    Answer,
    Assignment,
    AuditEvent,
    Campaign,
    ChangeFeed,
    Conflict,
    ContactAttempt,
    FieldVersion,
    Flag,
    MutationResult,
    Observation,
    Person,
    Survey,
    Tombstone,
    User,
    WalkList,
    WalkListStop,
)
from server.demo import DEMO_PASSWORD, load_demo
from server.retention import personal_rows_left, run_retention
from server.settings import Settings
from server.sync.controllers import SyncController
from sync.client import SyncClient
from sync.clock import HybridClock
from tests.conftest import REPO_ROOT

DOORS = 6


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The real app, with the sync routes registered if the factory does not include them yet."""
    application = create_app(settings)
    if not any(route.path == "/api/sync/push" for route in application.routes):
        application.register(SyncController)
    return application


def transport_for(client: AsyncTestClient[Litestar]):  # type: ignore[no-untyped-def]
    """A SyncClient transport over Litestar's test client."""

    async def transport(method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        response = await client.request(method, path, content=body or None, headers=headers)
        return response.status_code, response.content

    return transport


async def phone_for(client: AsyncTestClient[Litestar], campaign_id: int, email: str) -> SyncClient:
    """Sign in with the demo password, register a device and return a reference phone for it."""
    login = await client.post("/api/auth/login", json={"email": email, "password": DEMO_PASSWORD})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    device = await client.post(f"/api/campaigns/{campaign_id}/devices", json={"name": "phone"}, headers=headers)
    assert device.status_code == 201, device.text
    token = device.json()
    return SyncClient(token["node_id"], token["token"], transport_for(client), HybridClock(token["node_id"]))


async def arrange(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, int, int, list[int]]:
    """Demo town plus one walk list of DOORS doors with electors, assigned to the demo canvasser."""
    async with sessionmaker() as session:
        summary = await load_demo(session)
        cid = summary.campaign_id
        canvasser = await session.scalar(select(User.id).where(User.email == "canvasser@demo.canvass"))
        addresses = list(
            await session.scalars(
                select(Address.id)
                .where(Address.campaign_id == cid, Address.id.in_(select(Person.address_id).where(Person.campaign_id == cid)))
                .order_by(Address.id)
                .limit(DOORS)
            )
        )
        walk_list = WalkList(campaign_id=cid, name="Retention list", status="assigned", doors=DOORS)
        session.add(walk_list)
        await session.flush()
        for n, address_id in enumerate(addresses):
            session.add(WalkListStop(walk_list_id=walk_list.id, address_id=address_id, stop_number=n, position=n))
        session.add(Assignment(walk_list_id=walk_list.id, user_id=canvasser))
        survey_id = await session.scalar(select(Survey.id).where(Survey.campaign_id == cid))
        await session.commit()
        return cid, walk_list.id, int(survey_id or 0), addresses


async def run_cli(db_url: str, *args: str) -> str:
    """Run the `canvass` CLI in a subprocess on the test database; returns stdout (asserts exit 0)."""
    env = {**os.environ, "CANVASS_DATABASE_URL": db_url, "CANVASS_SECRET_KEY": "test-secret-key-" + "x" * 32}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", *args, cwd=REPO_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def scalar_count(session: AsyncSession, query) -> int:  # type: ignore[no-untyped-def]
    return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)


@pytest.mark.timeout(300)
async def test_retention_erases_personal_data_everywhere(
    client: AsyncTestClient[Litestar], sessionmaker: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    cid, list_id, survey_id, addresses = await arrange(sessionmaker)
    phone = await phone_for(client, cid, "canvasser@demo.canvass")
    other = await phone_for(client, cid, "canvasser@demo.canvass")
    assert (await phone.pull()).ok, phone.last_error
    assert (await other.pull()).ok, other.last_error
    people = sorted(int(p) for p in phone.ids("person"))
    assert people and phone.ids("address") == {str(a) for a in addresses}
    by_address: dict[int, list[int]] = {}
    for pid in people:
        by_address.setdefault(phone.get("person", pid)["address_id"], []).append(pid)  # type: ignore[index]

    # A morning's canvassing on two phones: knocks, answers, a do-not-visit, edits and a concurrent edit (conflict).
    first_address = addresses[0]
    target = by_address[first_address][0]
    phone.record_contact(first_address, "spoke", person_id=target, walk_list_id=list_id)
    phone.record_answer(first_address, "voting_intention", "Green", person_id=target, walk_list_id=list_id, survey_id=survey_id)
    phone.record_answer(first_address, "would_volunteer", True, person_id=target, walk_list_id=list_id, survey_id=survey_id)
    phone.edit_field("person", target, "phone", "07700 900001")
    phone.edit_field("person", target, "contact_consent", "phone")
    phone.edit_field("address", first_address, "household_note", "Dog; knock loudly. Mrs Jones is a carer.")
    phone.record_observation(addresses[1], "do_not_visit", note="asked us not to call again")
    phone.record_contact(addresses[2], "not_home", walk_list_id=list_id)
    other.edit_field("person", target, "phone", "07700 900002")  # concurrent with the edit above
    for device in (phone, other):
        pushed = await device.push()
        assert pushed.ok, device.last_error
    assert not phone.rejections and not other.rejections
    assert (await phone.pull()).ok and (await other.pull()).ok

    async with sessionmaker() as session:
        event_ids = [str(i) for m in (ContactAttempt, Answer, Observation) for i in await session.scalars(select(m.id).where(m.campaign_id == cid))]
        assert len(event_ids) == 5
        assert await scalar_count(session, select(Conflict.id).where(Conflict.campaign_id == cid)) == 1
        assert await scalar_count(session, select(Flag.id).where(Flag.campaign_id == cid)) == 1
        tallies_before = await tally_figures(session, cid)
        assert tallies_before["attempts"] == 2 and tallies_before["answer_cells"] >= 1

    # Phone "other" goes offline with more work touching people who are about to be erased.
    other.record_contact(first_address, "come_back", person_id=target, walk_list_id=list_id)
    other.edit_field("person", by_address[addresses[3]][0], "email", "voter@example.org")
    late_event = other.record_answer(addresses[3], "postal_vote", True, person_id=by_address[addresses[3]][0],
                                     walk_list_id=list_id, survey_id=survey_id)

    # Not due yet: polling day ten days ago, 90-day policy.
    async with sessionmaker() as session:
        campaign = await session.get(Campaign, cid)
        assert campaign is not None
        campaign.polling_day = datetime.now(UTC).date() - timedelta(days=10)
        campaign.retention_days = 90
        await session.commit()
    assert "no campaign is due" in await run_cli(db_url, "retention", "run")
    async with sessionmaker() as session:
        assert (await personal_rows_left(session, cid))["people"] > 0

    # Polling day passes the retention period: the CLI erases the campaign's personal data.
    async with sessionmaker() as session:
        campaign = await session.get(Campaign, cid)
        assert campaign is not None
        campaign.polling_day = date.today() - timedelta(days=91)
        await session.commit()
    output = await run_cli(db_url, "retention", "run")
    assert f"campaign {cid}" in output and "erased" in output, output

    async with sessionmaker() as session:
        left = await personal_rows_left(session, cid)
        assert set(left.values()) == {0}, left
        person_keys = [str(p) for p in people]
        for model in (ContactAttempt, Answer, Observation):
            assert await scalar_count(session, select(model.id).where(model.id.in_(event_ids))) == 0
        assert await scalar_count(session, select(Person.id).where(Person.id.in_(people))) == 0
        assert await scalar_count(session, select(Conflict.id).where(Conflict.campaign_id == cid)) == 0
        assert await scalar_count(session, select(FieldVersion.entity_id).where(
            or_(FieldVersion.entity == "person", FieldVersion.field.in_(("household_note", "access_note"))))) == 0
        assert await scalar_count(session, select(MutationResult.seq).where(
            or_(MutationResult.entity_id.in_(event_ids + person_keys), MutationResult.reason != ""))) == 0
        assert await scalar_count(session, select(Address.id).where(
            Address.campaign_id == cid, or_(Address.household_note.is_not(None), Address.access_note.is_not(None)))) == 0
        for event in await session.scalars(select(AuditEvent).where(AuditEvent.campaign_id == cid)):
            assert "person_id" not in (event.detail or {})
        tombstoned = set((await session.execute(select(Tombstone.entity, Tombstone.entity_id).where(Tombstone.campaign_id == cid))).all())
        assert {("person", p) for p in person_keys} <= tombstoned
        assert {e for e, i in tombstoned if i in event_ids} == {"contact_attempt", "answer", "observation"}
        assert await scalar_count(session, select(ChangeFeed.id).where(ChangeFeed.campaign_id == cid, ChangeFeed.op == "erase")) >= len(people)
        # Aggregates without personal data survive: attempts, contacts and answer counts by area and list.
        after = await tally_figures(session, cid)
        assert after == tallies_before, (tallies_before, after)
        # Addresses, walk lists and stops stay (public address data, no personal data).
        assert await scalar_count(session, select(WalkListStop.id).where(WalkListStop.walk_list_id == list_id)) == DOORS

    # The synced phone's next pull brings `erase`: every local copy goes.
    assert (await phone.pull()).ok, phone.last_error
    assert phone.ids("person") == set()
    for entity in ("contact_attempt", "answer", "observation"):
        assert phone.events(entity) == {}, entity
    assert phone.flags() == {}
    assert phone.get("address", first_address)["household_note"] is None  # type: ignore[index]
    assert phone.ids("address") == {str(a) for a in addresses}  # the doors stay on the list

    # The offline phone pushes late: everything touching an erased id is rejected, nothing comes back.
    pushed = await other.push()
    assert pushed.ok, other.last_error
    assert len(other.rejections) == 3
    assert all("erased" in r.reason for r in other.rejections), [r.reason for r in other.rejections]
    async with sessionmaker() as session:
        left = await personal_rows_left(session, cid)
        assert set(left.values()) == {0}, left
        assert await session.get(Answer, str(late_event.id)) is None
    assert (await other.pull()).ok
    assert other.ids("person") == set() and other.events("answer") == {}

    # Running it again is a no-op.
    async with sessionmaker() as session:
        reports = await run_retention(session)
        await session.commit()
    assert [(r.people, r.contact_attempts, r.answers, r.tombstones) for r in reports] == [(0, 0, 0, 0)]


async def tally_figures(session: AsyncSession, campaign_id: int) -> dict[str, int]:
    """Aggregate result figures that must survive retention (queued attempts folded in first, as every reader does)."""
    from sqlalchemy import text

    from server.results.tallies import fold_result_tallies

    await fold_result_tallies(session)

    door = (await session.execute(text(
        "SELECT count(DISTINCT address_id), coalesce(sum(attempts), 0), coalesce(sum(contacts), 0) FROM result_door_tally WHERE campaign_id = :c"
    ), {"c": campaign_id})).one()
    hour = await session.scalar(text("SELECT coalesce(sum(attempts), 0) FROM result_hour_tally WHERE campaign_id = :c"), {"c": campaign_id})
    cells = await session.scalar(text("SELECT coalesce(sum(n), 0) FROM result_answer_cells WHERE campaign_id = :c"), {"c": campaign_id})
    group = (await session.execute(text(
        "SELECT coalesce(sum(knocked), 0), coalesce(sum(attempts), 0) FROM result_group_tally WHERE campaign_id = :c AND kind = 'campaign'"
    ), {"c": campaign_id})).one()
    return {"doors": int(door[0]), "attempts": int(door[1]), "contacts": int(door[2]), "hour_attempts": int(hour or 0), "answer_cells": int(cells or 0),
            "campaign_knocked": int(group[0]), "campaign_attempts": int(group[1])}
