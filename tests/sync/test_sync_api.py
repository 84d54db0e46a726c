"""The sync protocol end to end: reference clients against the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import gzip
import uuid
from datetime import UTC, datetime

import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import (
    Answer,
    Assignment,
    ChangeFeed,
    Conflict,
    ContactAttempt,
    FieldVersion,
    Flag,
    Observation,
    Person,
)
from server.db.models import (
    MutationResult as MutationResultRow,
)
from server.sync.erasure import erase_person
from server.sync.store import SERVER_CLOCK
from sync.clock import HLC, format_hlc, system_wall_ms
from sync.protocol import Envelope, PushRequest, RecordContactAttempt
from tests.conftest import World
from tests.sync.conftest import Town, register_phone, two_phones_on_one_list


async def count(sessionmaker: async_sessionmaker[AsyncSession], model) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_first_pull_downloads_assigned_list_and_survey_only(
    client: AsyncTestClient[Litestar], world: World, town: Town
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    outcome = await phone.pull()
    assert outcome.ok, phone.last_error
    mine = town.lists[0]
    assert phone.ids("walk_list") == {str(mine)}
    assert phone.ids("address") == {str(a) for a in town.addresses[mine]}
    assert phone.ids("person") == {str(p) for a in town.addresses[mine] for p in town.people[a]}
    assert phone.ids("survey") == {str(town.survey_id)}
    assert phone.ids("stop") and len(phone.ids("stop")) == len(town.addresses[mine])
    # another campaign's canvasser sees nothing of campaign A
    outsider = await register_phone(client, world, "other_canvasser", world.campaign_b)
    assert (await outsider.pull()).ok
    assert all(not outsider.ids(e) for e in ("walk_list", "address", "person", "survey"))


async def test_push_then_pull_round_trip_and_read_your_writes(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    await phone.pull()
    address = town.addresses[town.lists[0]][0]
    person = town.people[address][0]
    attempt = phone.record_contact(address, "spoke", person_id=person, walk_list_id=town.lists[0])
    phone.record_answer(
        address,
        "vote",
        "grn",
        person_id=person,
        walk_list_id=town.lists[0],
        survey_id=town.survey_id,
    )
    phone.edit_field("person", person, "phone", "07700 900123")
    assert phone.get("person", person)["phone"] == "07700 900123"  # type: ignore[index]
    pushed, pulled = await phone.sync()
    assert pushed.ok and pulled is not None and pulled.ok, phone.last_error
    assert phone.outbox == [] and phone.rejections == []
    assert phone.get("person", person)["phone"] == "07700 900123"  # type: ignore[index]
    assert str(attempt.id) in phone.events("contact_attempt")
    assert phone.state.pending_edits == []  # the pulled copy caught up with the edit
    async with sessionmaker() as session:
        row = await session.get(Person, person)
        assert row is not None and row.phone == "07700 900123"
        assert await session.get(ContactAttempt, str(attempt.id)) is not None
    # a second phone of an organiser assigned the same list sees the work
    async with sessionmaker() as session:
        session.add(Assignment(walk_list_id=town.lists[0], user_id=world.users["organiser"]))
        await session.commit()
    organiser = await register_phone(client, world, "organiser", world.campaign_a)
    assert (await organiser.pull()).ok
    assert organiser.get("person", person)["phone"] == "07700 900123"  # type: ignore[index]
    assert str(attempt.id) in organiser.events("contact_attempt")
    assert len(organiser.events("answer")) == 1


async def test_replayed_push_is_a_no_op_with_the_same_result(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    address = town.addresses[town.lists[0]][1]
    phone.record_contact(address, "not_home")
    phone.record_contact(999_999, "spoke")  # never applicable: rejected, not retried
    request = PushRequest(
        protocol_version=1, device_id=phone.device_id, mutations=list(phone.outbox)
    )
    headers = {
        "Authorization": f"Bearer {phone.token}",
        "X-Canvass-Protocol": "1",
        "Content-Type": "application/json",
    }
    body = msgspec.json.encode(request)
    first = await client.post("/api/sync/push", content=body, headers=headers)
    assert first.status_code == 200, first.text
    feed_rows = await count(sessionmaker, ChangeFeed)
    second = await client.post(
        "/api/sync/push",
        content=gzip.compress(body),
        headers={**headers, "Content-Encoding": "gzip"},
    )
    assert second.status_code == 200
    assert first.json()["results"] == second.json()["results"]
    assert first.json()["last_seq"] == second.json()["last_seq"]
    statuses = [r["status"] for r in first.json()["results"]]
    assert statuses == ["applied", "rejected"]
    assert first.json()["results"][1]["reason"].startswith("unknown: address")
    assert await count(sessionmaker, ContactAttempt) == 1
    assert await count(sessionmaker, ChangeFeed) == feed_rows
    assert await count(sessionmaker, MutationResultRow) == 2


async def test_malformed_mutation_is_rejected_alone(
    client: AsyncTestClient[Litestar], world: World, town: Town
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    good = phone.record_contact(town.addresses[town.lists[0]][0], "spoke")
    body = msgspec.json.encode(
        {
            "protocol_version": 1,
            "device_id": phone.device_id,
            "mutations": [
                {"seq": 1, "mutation": msgspec.to_builtins(good)},
                {"seq": 2, "mutation": {"op": "teleport", "id": str(uuid.uuid4())}},
            ],
        }
    )
    response = await client.post(
        "/api/sync/push",
        content=body,
        headers={"Authorization": f"Bearer {phone.token}", "X-Canvass-Protocol": "1"},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    # an op this server does not know (a newer app's) is "unsupported:", kept for review
    assert [r["status"] for r in results] == ["applied", "rejected"] and results[1]["reason"].startswith(
        "unsupported:"
    )
    assert response.json()["last_seq"] == 2


async def test_future_clock_event_is_kept_and_does_not_move_server_clock(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Contract B (was: rejected for clock skew): the knock is kept, its time marked untrusted."""
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    far_future = format_hlc(HLC(system_wall_ms() + 60 * 60 * 1000, 0, phone.device_id))
    event = RecordContactAttempt(
        id=uuid.uuid4(), address_id=town.addresses[town.lists[0]][0], outcome="spoke", at=far_future
    )
    phone.state.outbox.append(Envelope(seq=phone.state.next_seq, mutation=event))
    phone.state.next_seq += 1
    outcome = await phone.push()
    assert outcome.ok
    assert phone.rejections == []
    assert SERVER_CLOCK.last.wall_ms < system_wall_ms() + 10 * 60 * 1000
    assert await count(sessionmaker, ContactAttempt) == 1


async def test_unsupported_protocol_gets_upgrade_required_and_keeps_queue(
    client: AsyncTestClient[Litestar], world: World, town: Town
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a, protocol_version=99)
    phone.record_contact(town.addresses[town.lists[0]][0], "spoke")
    outcome = await phone.push(retries=3)
    assert outcome.status == 426 and phone.upgrade_required and len(phone.outbox) == 1
    problem = msgspec.json.decode(phone.last_error.split(": ", 1)[1])
    assert problem["status"] == 426 and problem["supported_versions"] == [1]
    phone.protocol_version = 1
    assert (await phone.push()).ok and not phone.upgrade_required and phone.outbox == []


async def test_password_token_and_foreign_device_id_are_refused(
    client: AsyncTestClient[Litestar], world: World, town: Town
) -> None:
    body = msgspec.json.encode(PushRequest(protocol_version=1, device_id="abc", mutations=[]))
    response = await client.post(
        "/api/sync/push",
        content=body,
        headers={**world.auth("canvasser"), "X-Canvass-Protocol": "1"},
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    response = await client.post(
        "/api/sync/push",
        content=body,
        headers={"Authorization": f"Bearer {phone.token}", "X-Canvass-Protocol": "1"},
    )
    assert response.status_code == 403


async def test_concurrent_edits_converge_and_keep_the_loser(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    a, b = await two_phones_on_one_list(client, world, town, sessionmaker)
    address = town.addresses[town.lists[0]][2]
    a.edit_field("address", address, "access_note", "side gate")
    await asyncio.sleep(
        0.005
    )  # b's wall clock is later (same-ms stamps would be ordered by node id)
    b.edit_field(
        "address", address, "access_note", "use the back door"
    )  # later HLC, never saw a's edit
    assert (await a.push()).ok and (await b.push()).ok
    for phone in (a, b):
        assert (await phone.pull()).ok
    assert (
        a.get("address", address)["access_note"]
        == b.get("address", address)["access_note"]
        == "use the back door"
    )  # type: ignore[index]
    async with sessionmaker() as session:
        conflicts = list(await session.scalars(select(Conflict)))
    assert [(c.losing_value, c.winning_value) for c in conflicts] == [
        ("side gate", "use the back door")
    ]
    # a sequential edit (based on the winner) is not a conflict
    a.edit_field("address", address, "access_note", "gate code 1234")
    await a.sync()
    assert await count(sessionmaker, Conflict) == 1


async def test_do_not_visit_rules(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    canvasser, organiser = await two_phones_on_one_list(client, world, town, sessionmaker)
    address = town.addresses[town.lists[0]][3]
    person = town.people[address][0]
    canvasser.record_observation(address, "do_not_visit", person_id=person)
    await canvasser.sync()
    canvasser.record_observation(address, "do_not_visit_cleared", person_id=person)
    await canvasser.push()
    assert canvasser.rejections[-1].reason == "not_allowed: only an organiser may clear do-not-visit"
    assert (await organiser.pull()).ok
    assert organiser.flags()[(address, person)].do_not_visit
    # a set made offline before the organiser's clear, synced after it, still wins
    offline = canvasser.record_observation(address, "do_not_visit", person_id=person)
    await asyncio.sleep(0.005)
    organiser.record_observation(address, "do_not_visit_cleared", person_id=person)
    assert (await organiser.sync())[0].ok
    async with sessionmaker() as session:
        flag = await session.scalar(
            select(Flag).where(Flag.address_id == address, Flag.kind == "do_not_visit")
        )
        assert flag is not None and not flag.active
    assert offline.at < organiser.outbox[-1].mutation.at if organiser.outbox else True  # type: ignore[union-attr]
    await canvasser.sync()
    await organiser.pull()
    for phone in (canvasser, organiser):
        assert phone.flags()[(address, person)].do_not_visit
    async with sessionmaker() as session:
        flag = await session.scalar(
            select(Flag).where(Flag.address_id == address, Flag.kind == "do_not_visit")
        )
        assert flag is not None and flag.active


async def test_losing_a_list_sends_remove_and_keeps_work(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    await phone.pull()
    mine, other = town.lists
    address = town.addresses[mine][0]
    phone.record_contact(address, "come_back")  # offline work done before the reassignment
    async with sessionmaker() as session:
        assignment = await session.scalar(select(Assignment).where(Assignment.walk_list_id == mine))
        assert assignment is not None
        assignment.ended_at = datetime.now(UTC)
        session.add(Assignment(walk_list_id=other, user_id=world.users["canvasser"]))
        await session.commit()
    pushed, pulled = await phone.sync()
    assert pushed.ok and pulled is not None and pulled.ok
    assert phone.rejections == []  # work done before the reassignment is kept
    assert phone.ids("walk_list") == {str(other)}
    assert phone.ids("address") == {str(a) for a in town.addresses[other]}
    assert (
        not phone.ids("contact_attempt") & set()
    )  # removed list's events are gone from the pulled store
    assert await count(sessionmaker, ContactAttempt) == 1
    # a list the user may not see cannot be downloaded
    response = await client.get(
        f"/api/sync/lists/{mine}",
        headers={"Authorization": f"Bearer {phone.token}", "X-Canvass-Protocol": "1"},
    )
    assert response.status_code == 404


async def test_erasure_purges_everywhere_and_blocks_resurrection(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    await phone.pull()
    address = town.addresses[town.lists[0]][1]
    person = town.people[address][1]
    phone.edit_field("person", person, "email", "alex@example.org")
    phone.record_answer(address, "vote", "lab", person_id=person)
    phone.record_observation(address, "do_not_visit", person_id=person)
    await phone.sync()
    phone.edit_field(
        "person", person, "phone", "07700 900999"
    )  # still queued when the erasure lands
    async with sessionmaker() as session:
        await erase_person(session, world.campaign_a, person, world.users["admin"])
        await session.commit()
    assert (await phone.pull()).ok
    assert phone.get("person", person) is None and phone.outbox == []
    state = phone.to_state()
    assert b"alex@example.org" not in state and b"07700 900999" not in state
    async with sessionmaker() as session:
        assert await session.get(Person, person) is None
        for model in (Answer, Observation, ContactAttempt):
            rows = await session.scalars(select(model).where(model.person_id == person))
            assert list(rows) == []
        assert list(await session.scalars(select(Flag).where(Flag.person_key == person))) == []
        assert (
            list(
                await session.scalars(
                    select(FieldVersion).where(
                        FieldVersion.entity == "person", FieldVersion.entity_id == person
                    )
                )
            )
            == []
        )
        assert (
            list(
                await session.scalars(
                    select(Conflict).where(
                        Conflict.entity == "person", Conflict.entity_id == person
                    )
                )
            )
            == []
        )
    # a late push from another phone touching the erased person is rejected, never resurrects it
    late = await register_phone(client, world, "canvasser", world.campaign_a)
    late.record_answer(address, "vote", "con", person_id=person)
    late.edit_field("person", person, "note", "x")
    assert (await late.push()).ok
    assert [r.reason for r in late.rejections] == [f"erased: person {person} was erased"] * 2
    async with sessionmaker() as session:
        assert await session.get(Person, person) is None


async def test_failed_push_changes_nothing(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    phone.record_contact(town.addresses[town.lists[0]][0], "spoke")
    body = msgspec.json.encode(
        PushRequest(protocol_version=1, device_id=phone.device_id, mutations=list(phone.outbox))
    )
    truncated = body[: len(body) // 2]
    response = await client.post(
        "/api/sync/push",
        content=truncated,
        headers={"Authorization": f"Bearer {phone.token}", "X-Canvass-Protocol": "1"},
    )
    assert response.status_code in (400, 422)
    for model in (ContactAttempt, ChangeFeed, MutationResultRow):
        assert await count(sessionmaker, model) == 0


async def test_same_event_from_two_devices_at_once_is_stored_once(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Two phones push the same event id in overlapping transactions: one applies it, the other
    gets ``duplicate`` (never a server error), and the event and its feed row exist once."""
    from server.db.models import Device, Role
    from server.sync.store import RawEnvelope, apply_push, push_context_for

    phones = [await register_phone(client, world, "canvasser", world.campaign_a) for _ in range(2)]
    async with sessionmaker() as session:
        devices = [
            await session.scalar(select(Device.id).where(Device.node_id == p.device_id)) for p in phones
        ]
    event_id = uuid.uuid4()
    address = town.addresses[town.lists[0]][0]

    def envelope(phone) -> list[RawEnvelope]:  # type: ignore[no-untyped-def]
        mutation = RecordContactAttempt(id=event_id, address_id=address, outcome="spoke", at=phone.clock.now().encode())
        return [RawEnvelope(seq=1, mutation=msgspec.Raw(msgspec.json.encode(mutation)))]

    async def push(session: AsyncSession, n: int):  # type: ignore[no-untyped-def]
        context = await push_context_for(session, devices[n], world.users["canvasser"], Role.canvasser, 300_000)
        return await apply_push(session, context, envelope(phones[n]))

    async def second() -> str:
        async with sessionmaker() as session:
            response = await push(session, 1)
            await session.commit()
            return response.results[0].status

    async with sessionmaker() as first_session:
        first = await push(first_session, 0)
        racing = asyncio.create_task(second())
        await asyncio.sleep(0.5)
        assert not racing.done(), "the second push waits for the first transaction (row lock / SQLite write lock)"
        await first_session.commit()
    assert first.results[0].status == "applied"
    assert await asyncio.wait_for(racing, 30) == "duplicate"
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).where(ContactAttempt.id == str(event_id))) == 1
        assert await session.scalar(select(func.count()).where(ChangeFeed.entity_id == str(event_id))) == 1
        statuses = sorted((await session.scalars(select(MutationResultRow.status).where(MutationResultRow.entity_id == str(event_id)))).all())
    assert statuses == ["applied", "duplicate"]


async def test_a_push_racing_another_delivery_of_itself_is_applied_once(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A phone's push delivered twice at once (a retry racing the original): the one-statement
    path (PostgreSQL) writes nothing once the receipt has moved under it, and the locking path
    then answers exactly what the first delivery answered; every event, feed row and result
    exists once."""
    from server.db.models import Device, Role
    from server.sync.store import RawEnvelope, apply_plain_push, apply_push, push_context_for

    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    async with sessionmaker() as session:
        device = await session.scalar(select(Device.id).where(Device.node_id == phone.device_id))
        assert device is not None
        context = await push_context_for(session, device, world.users["canvasser"], Role.canvasser, 300_000)
    doors = town.addresses[town.lists[0]][:3]
    envelopes = [
        RawEnvelope(seq=n + 1, mutation=msgspec.Raw(msgspec.json.encode(RecordContactAttempt(
            id=uuid.uuid4(), address_id=door, outcome="not_home", at=phone.clock.now().encode()))))
        for n, door in enumerate(doors)
    ]
    postgres = "postgresql" in str(sessionmaker.kw.get("bind").url)  # type: ignore[union-attr]
    engine = sessionmaker.kw["bind"]

    async def optimistic() -> object:
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine
        async with AsyncSession(autocommit, expire_on_commit=False) as session:
            return await apply_plain_push(session, context, envelopes)

    async with sessionmaker() as held:  # the first delivery, its transaction still open
        first = await apply_push(held, context, envelopes)
        racing = asyncio.create_task(optimistic())
        await asyncio.sleep(0.5)
        if postgres:
            # it read last_seq 0 and now waits for the first delivery's lock on the receipt
            assert not racing.done()
        await held.commit()
    assert await asyncio.wait_for(racing, 30) is None  # declined: nothing written (SQLite: always)
    async with sessionmaker() as session:
        again = await apply_push(session, context, envelopes)
        await session.commit()
    assert (again.results, again.last_seq) == (first.results, first.last_seq)
    assert [r.status for r in first.results] == ["applied"] * 3
    assert await count(sessionmaker, ContactAttempt) == 3
    assert await count(sessionmaker, ChangeFeed) == 3
    assert await count(sessionmaker, MutationResultRow) == 3


async def test_event_already_stored_stays_a_duplicate_after_what_it_names_changed(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A stored event sent again under a new seq (say, by a phone restored from a backup) after its
    person moved house is a ``duplicate``, not a rejection telling the canvasser their knock was refused."""
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    address, elsewhere = town.addresses[town.lists[0]][:2]
    person = town.people[address][0]
    event = phone.record_contact(address, "spoke", person_id=person)
    assert (await phone.push()).ok
    async with sessionmaker() as session:
        moved = await session.get(Person, person)
        assert moved is not None
        moved.address_id = elsewhere
        await session.commit()
    phone._enqueue(event)  # the same event again, next seq
    assert (await phone.push()).ok
    assert not phone.rejections
    async with sessionmaker() as session:
        statuses = (await session.scalars(select(MutationResultRow.status).where(MutationResultRow.entity_id == str(event.id)))).all()
        assert sorted(statuses) == ["applied", "duplicate"]
        assert await session.scalar(select(func.count()).where(ContactAttempt.id == str(event.id))) == 1
