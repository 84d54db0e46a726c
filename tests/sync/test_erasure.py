"""One erasure path (issue 13): endpoint and CLI for one person or address, erase changes for every
dependent row (flags included), register replace through it, and no push racing it can land an
event about what it erased; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import (
    Address,
    Answer,
    ChangeFeed,
    HeldMutation,
    Person,
    Tombstone,
)
from server.sync.erasure import erase_person
from tests.conftest import REPO_ROOT, World
from tests.sync.conftest import Town, register_phone


async def test_erasing_a_person_by_endpoint_erases_flags_and_kept_payloads(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    await phone.pull()
    address = town.addresses[town.lists[0]][0]
    person = town.people[address][0]
    phone.record_observation(address, "do_not_visit", person_id=person)
    phone.record_answer(address, "vote", "reform", person_id=person, survey_id=town.survey_id)  # kept, unsupported
    assert (await phone.sync())[0].ok
    flag = f"{address}:{person}"
    assert flag in phone.ids("flag")
    base = f"/api/campaigns/{world.campaign_a}/erasures"
    refused = await client.post(base, json={"entity": "person", "id": person}, headers=world.auth("canvasser"))
    assert refused.status_code == 403
    done = await client.post(base, json={"entity": "person", "id": person}, headers=world.auth("organiser"))
    assert done.status_code == 200, done.text
    assert done.json()["erased"] is True
    missing = await client.post(base, json={"entity": "person", "id": 999_999}, headers=world.auth("organiser"))
    assert missing.status_code == 404
    assert (await phone.pull()).ok
    assert flag not in phone.ids("flag") and flag in phone.state.erased.get("flag", [])
    assert str(person) not in phone.ids("person")
    async with sessionmaker() as session:
        assert await session.get(Person, person) is None
        assert (await session.scalars(select(HeldMutation).where(HeldMutation.person_id == person))).all() == []
        erase_rows = set((await session.execute(
            select(ChangeFeed.entity, ChangeFeed.entity_id).where(ChangeFeed.op == "erase"))).all())
    assert ("flag", flag) in erase_rows and ("person", str(person)) in erase_rows


async def test_canvass_erase_cli_erases_an_address(
    db_url: str, world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    address = town.addresses[town.lists[1]][0]
    env = {**os.environ, "CANVASS_DATABASE_URL": db_url, "CANVASS_SECRET_KEY": "test-secret-key-" + "x" * 32}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "erase", "--campaign", str(world.campaign_a), "--address", str(address),
        cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "erased address" in out.decode()
    async with sessionmaker() as session:
        assert await session.get(Address, address) is None
        for person in town.people[address]:
            assert await session.get(Person, person) is None
        assert await session.scalar(select(func.count()).where(Tombstone.entity == "address", Tombstone.entity_id == str(address))) == 1
    again = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "erase", "--campaign", str(world.campaign_a), "--address", str(address),
        cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await again.communicate()
    assert again.returncode != 0 and len(err.decode().strip().splitlines()) == 1


async def test_an_erasure_racing_a_push_leaves_no_event_about_the_erased_person(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The push reads (people exist), then the erasure commits, then the push writes: on
    PostgreSQL the insert's erasure fence removes what it wrote; on SQLite the push waits for the
    write lock and then finds the tombstones."""
    import msgspec

    from server.db.models import ContactAttempt, Device, Role
    from server.sync.store import RawEnvelope, apply_plain_push, push_context_for

    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    await phone.pull()
    address = town.addresses[town.lists[0]][2]
    person = town.people[address][1]
    for _ in range(3):
        phone.record_answer(address, "vote", "lab", person_id=person, survey_id=town.survey_id)
        phone.record_contact(address, "spoke", person_id=person)
    envelopes = [RawEnvelope(seq=e.seq, mutation=msgspec.Raw(msgspec.json.encode(e.mutation))) for e in phone.outbox]
    async with sessionmaker() as session:
        device = await session.scalar(select(Device.id).where(Device.node_id == phone.device_id))
        context = await push_context_for(session, device, world.users["canvasser"], Role.canvasser, 300_000)  # type: ignore[arg-type]
    engine = sessionmaker.kw["bind"]
    postgres = engine.dialect.name == "postgresql"

    async def push() -> object:
        bind = engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine
        async with AsyncSession(bind, expire_on_commit=False) as session:
            if postgres:  # the one-statement path: its read happens before the erasure commits
                return await apply_plain_push(session, context, envelopes)
            from server.sync.store import apply_push

            response = await apply_push(session, context, envelopes)
            await session.commit()
            return response

    async with sessionmaker() as eraser:
        assert await erase_person(eraser, world.campaign_a, person, None)
        pushing = asyncio.create_task(push())
        await asyncio.sleep(0.5)
        await eraser.commit()
    response = await asyncio.wait_for(pushing, 60)
    assert response is not None
    # either order is a valid history: rejected as erased, or applied first and erased with the person
    statuses = {(r.status, r.reason.split(":")[0]) for r in response.results}  # type: ignore[attr-defined]
    assert statuses <= {("rejected", "erased"), ("applied", "")}, response
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Answer).where(Answer.person_id == person)) == 0
        assert await session.scalar(
            select(func.count()).select_from(ContactAttempt).where(ContactAttempt.person_id == person)
        ) == 0


async def test_replacing_the_register_tombstones_the_people_it_removes(
    world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from server.geography.services import import_register

    register = tmp_path / "register.csv"
    register.write_text("polling_district,elector_number,surname,forenames,address1,postcode\n"
                        "AA,1,Newname,Sam,1 Mill Road,AB1 2CD\n", encoding="utf-8")
    before = [p for people in town.people.values() for p in people]
    async with sessionmaker() as session:
        await import_register(session, world.campaign_a, register, replace=True)
        await session.commit()
    async with sessionmaker() as session:
        tombstoned = set((await session.scalars(select(Tombstone.entity_id).where(Tombstone.entity == "person"))).all())
        erased = set((await session.scalars(
            select(ChangeFeed.entity_id).where(ChangeFeed.entity == "person", ChangeFeed.op == "erase"))).all())
    assert {str(p) for p in before} <= tombstoned
    assert {str(p) for p in before} <= erased
