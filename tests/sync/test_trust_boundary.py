"""Issue 13: the sync trust boundary (write scope, identity, clocks, nothing thrown away, cursors,
checksums, survey answers, audit), each on SQLite and PostgreSQL through the real app."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import (
    Answer,
    Assignment,
    AuditEvent,
    ContactAttempt,
    HeldMutation,
    Person,
)
from server.sync.store import SERVER_CLOCK
from sync.clock import HLC, format_hlc, system_wall_ms
from tests.conftest import World
from tests.sync.conftest import Town, app_transport, register_phone

HOUR_MS = 3_600_000


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Canvass-Protocol": "1", "Content-Type": "application/json"}


async def raw_push(client: AsyncTestClient[Litestar], phone: Any, mutations: list[tuple[int, Any]]) -> Any:
    """Push (seq, mutation) pairs as sent, bypassing the client's outbox."""
    body = msgspec.json.encode(
        {
            "protocol_version": 1,
            "device_id": phone.device_id,
            "mutations": [{"seq": s, "mutation": msgspec.to_builtins(m)} for s, m in mutations],
        }
    )
    return await client.post("/api/sync/push", content=body, headers=_headers(phone.token))


async def held(sessionmaker: async_sessionmaker[AsyncSession]) -> list[HeldMutation]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(HeldMutation).order_by(HeldMutation.id))).all())


def stamp(phone: Any, offset_ms: int = 0) -> str:
    return format_hlc(HLC(system_wall_ms() + offset_ms, 0, phone.device_id))


# ---------------------------------------------------------------------------- 1. write scope


async def test_writes_outside_the_devices_lists_are_rejected_and_kept(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    await phone.pull()
    mine = town.addresses[town.lists[0]][0]
    theirs = town.addresses[town.lists[1]][0]
    their_person = town.people[theirs][0]
    phone.record_contact(mine, "spoke")
    phone.record_contact(theirs, "spoke")
    phone.record_answer(theirs, "vote", "lab", person_id=their_person, survey_id=town.survey_id)
    phone.record_observation(theirs, "do_not_visit")
    from sync.protocol import EditField

    edit = EditField(entity="person", entity_id=their_person, field="phone", value="07700 900999", hlc=phone.clock.now().encode())
    phone._enqueue(edit)
    assert (await phone.push()).ok, phone.last_error
    reasons = [r.reason for r in phone.rejections]
    assert len(reasons) == 4 and all(r.startswith("out_of_scope:") for r in reasons), reasons
    async with sessionmaker() as session:
        assert (await session.get(Person, their_person)).phone is None  # type: ignore[union-attr]
        assert len((await session.scalars(select(ContactAttempt))).all()) == 1
    kept = await held(sessionmaker)
    assert len(kept) == 4 and all(k.status == "rejected" for k in kept)
    payloads = [msgspec.json.decode(k.payload) for k in kept]
    assert any(p.get("value") == "07700 900999" for p in payloads)
    assert {k.address_id for k in kept if k.op != "edit_field"} == {theirs}
    assert {k.person_id for k in kept if k.op == "edit_field"} == {their_person}


async def test_work_recorded_while_assigned_is_accepted_after_reassignment(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    await phone.pull()
    address = town.addresses[town.lists[0]][1]
    now = datetime.now(UTC)
    async with sessionmaker() as session:  # held the list from 3 h ago until 1 h ago
        await session.execute(
            update(Assignment)
            .where(Assignment.walk_list_id == town.lists[0])
            .values(assigned_at=now - timedelta(hours=3), ended_at=now - timedelta(hours=1))
        )
        await session.commit()
    phone.device_wall = lambda: system_wall_ms() - 2 * HOUR_MS  # recorded 2 h ago, offline since
    phone.clock.rewind(system_wall_ms() - 2 * HOUR_MS)
    phone.record_contact(address, "not_home")
    phone.device_wall = system_wall_ms
    late = phone.record_contact(address, "spoke")  # recorded after the list was taken away
    organiser = await register_phone(client, world, "organiser", world.campaign_a)
    organiser.record_contact(town.addresses[town.lists[1]][0], "spoke")  # organisers: campaign-wide
    assert (await phone.push()).ok and (await organiser.push()).ok
    assert [r.mutation.id for r in phone.rejections] == [late.id]
    assert phone.rejections[0].reason.startswith("out_of_scope:")
    assert organiser.rejections == []


# ---------------------------------------------------------------------------- 2. identity


async def test_signing_in_again_keeps_the_node_id_and_the_queue(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    node = uuid.uuid4().hex[:16]
    base = f"/api/campaigns/{world.campaign_a}/devices"
    first = await client.post(base, json={"name": "phone", "node_id": node}, headers=world.auth("canvasser"))
    assert first.status_code == 201, first.text
    assert first.json()["node_id"] == node
    from sync.client import SyncClient
    from sync.clock import HybridClock

    phone = SyncClient(node, first.json()["token"], app_transport(client), HybridClock(node))
    await phone.pull()
    address = town.addresses[town.lists[0]][0]
    phone.record_contact(address, "spoke")
    assert (await phone.push()).ok
    queued = [phone.record_contact(address, "not_home"), phone.record_contact(address, "come_back")]
    revoked = await client.delete(f"{base}/{first.json()['device_id']}", headers=world.auth("canvasser"))
    assert revoked.status_code == 204
    for method, path in (("POST", "/api/sync/push"), ("POST", "/api/sync/pull"), ("GET", f"/api/sync/lists/{town.lists[0]}")):
        body = msgspec.json.encode({"protocol_version": 1, "device_id": node, "mutations": []} if path.endswith("push") else {"protocol_version": 1, "device_id": node})
        answer = await client.request(method, path, content=body if method == "POST" else None, headers=_headers(phone.token))
        assert answer.status_code == 401, (path, answer.status_code)
    old_token = phone.token
    again = await client.post(base, json={"name": "phone", "node_id": node}, headers=world.auth("canvasser"))
    assert again.status_code == 201, again.text
    assert (again.json()["device_id"], again.json()["node_id"]) == (first.json()["device_id"], node)
    phone.token = again.json()["token"]
    assert (await phone.push()).ok and phone.rejections == [], [r.reason for r in phone.rejections]
    async with sessionmaker() as session:
        ids = set((await session.scalars(select(ContactAttempt.id))).all())
    assert {str(e.id) for e in queued} <= ids
    stale = await client.post("/api/sync/pull", content=msgspec.json.encode({"protocol_version": 1, "device_id": node}), headers=_headers(old_token))
    assert stale.status_code == 401
    taken = await client.post(base, json={"name": "mine now", "node_id": node}, headers=world.auth("organiser"))
    assert taken.status_code == 409 and taken.headers["content-type"].startswith("application/problem+json")
    bad = await client.post(base, json={"name": "x", "node_id": "NOT-HEX"}, headers=world.auth("organiser"))
    assert bad.status_code in (400, 422)


# ---------------------------------------------------------------------------- 3. clocks


async def test_events_from_a_fast_clock_are_kept_marked_untrusted(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    await phone.pull()
    address = town.addresses[town.lists[0]][0]
    from sync.protocol import RecordContactAttempt

    event = RecordContactAttempt(id=uuid.uuid4(), address_id=address, outcome="spoke", at=stamp(phone, 5 * HOUR_MS))
    response = await raw_push(client, phone, [(1, event)])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["results"][0]["status"] == "applied"
    assert abs(body["server_time_ms"] - system_wall_ms()) < 60_000
    assert SERVER_CLOCK.last.wall_ms < system_wall_ms() + HOUR_MS
    async with sessionmaker() as session:
        row = await session.get(ContactAttempt, str(event.id))
        assert row is not None and row.time_untrusted and row.hlc == event.at and row.received_at is not None
    phone.state.next_seq = 2
    await phone.pull()
    pulled = phone.events("contact_attempt")[str(event.id)]
    assert pulled["time_untrusted"] is True and pulled["received_at"]


async def test_a_fast_clock_edit_is_restamped_and_the_client_recovers(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    await phone.pull()
    address = town.addresses[town.lists[0]][0]
    person = town.people[address][0]
    phone.device_wall = lambda: system_wall_ms() + 3 * HOUR_MS  # the phone's clock is 3 h fast
    edit = phone.edit_field("person", person, "phone", "07700 900555")
    response = await raw_push(client, phone, [(1, edit)])
    assert response.json()["results"][0]["status"] == "restamp", response.text
    replay = await raw_push(client, phone, [(1, edit)])
    assert replay.json()["results"] == response.json()["results"]
    [kept] = await held(sessionmaker)
    assert kept.status == "restamp" and msgspec.json.decode(kept.payload)["value"] == "07700 900555"
    # the reference client: adopt the server's clock, re-stamp and re-queue, and it is accepted at once
    assert (await phone.push()).ok
    assert phone.outbox == [] and phone.rejections == [], (phone.outbox, phone.rejections)
    async with sessionmaker() as session:
        assert (await session.get(Person, person)).phone == "07700 900555"  # type: ignore[union-attr]
    follow_up = phone.edit_field("person", person, "email", "a@example.org")
    assert int(follow_up.hlc[:13]) - system_wall_ms() <= 300_000  # within the bound (the server clock may lead a little)
    assert (await phone.push()).ok and phone.rejections == []


# ---------------------------------------------------------------------------- 4. nothing thrown away


async def test_same_event_id_with_other_content_is_a_conflict_record(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    address = town.addresses[town.lists[0]][0]
    from sync.protocol import RecordContactAttempt

    first = RecordContactAttempt(id=uuid.uuid4(), address_id=address, outcome="spoke", at=stamp(phone))
    other = msgspec.structs.replace(first, outcome="refused")
    same = first
    answer = (await raw_push(client, phone, [(1, first), (2, same), (3, other)])).json()
    assert [r["status"] for r in answer["results"]] == ["applied", "duplicate", "conflict"], answer
    assert answer["results"][2]["reason"].startswith("conflicting_duplicate:")
    [kept] = await held(sessionmaker)
    assert kept.status == "conflict" and msgspec.json.decode(kept.payload)["outcome"] == "refused"
    later = (await raw_push(client, phone, [(4, other)])).json()  # a later push: same answer
    assert later["results"][0]["status"] == "conflict"


async def test_a_repeated_seq_in_one_batch_is_rejected_and_kept(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    address = town.addresses[town.lists[0]][0]
    from sync.protocol import RecordContactAttempt

    a = RecordContactAttempt(id=uuid.uuid4(), address_id=address, outcome="spoke", at=stamp(phone))
    b = RecordContactAttempt(id=uuid.uuid4(), address_id=address, outcome="not_home", at=stamp(phone))
    answer = (await raw_push(client, phone, [(1, a), (1, b)])).json()
    assert [(r["seq"], r["status"]) for r in answer["results"]] == [(1, "applied"), (1, "rejected")], answer
    assert answer["results"][1]["reason"].startswith("duplicate_seq:")
    [kept] = await held(sessionmaker)
    assert msgspec.json.decode(kept.payload)["id"] == str(b.id)


# ---------------------------------------------------------------------------- 5. cursors


async def test_forged_tampered_and_oversized_cursors_get_400(
    client: AsyncTestClient[Litestar], world: World, town: Town
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    assert (await phone.pull()).ok
    cursor = phone.cursor
    assert cursor
    other = await register_phone(client, world, "organiser", world.campaign_a)
    forged = base64.urlsafe_b64encode(msgspec.json.encode({"horizon": 0, "lists": town.lists})).decode().rstrip("=")
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    for who, value in ((phone, forged), (phone, tampered), (phone, "x" * 100_000), (phone, "%%%"), (other, cursor)):
        response = await client.post(
            "/api/sync/pull",
            content=msgspec.json.encode({"protocol_version": 1, "device_id": who.device_id, "cursor": value}),
            headers=_headers(who.token),
        )
        assert response.status_code == 400, (value[:40], response.status_code, response.text[:200])
        assert response.json()["type"].endswith("/invalid-cursor")
    # the reference client resets its cursor and pulls again
    phone.state.cursor = forged
    assert (await phone.pull()).ok, phone.last_error
    assert phone.ids("walk_list") == {str(town.lists[0])}


# ---------------------------------------------------------------------------- 7. checksums


async def test_a_corrupted_local_copy_is_detected_and_repaired(
    client: AsyncTestClient[Litestar], world: World, town: Town
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    assert (await phone.pull()).ok
    expected = {e: phone.ids(e) for e in ("walk_list", "stop", "address", "person")}
    mine = str(town.lists[0])
    # corrupt: lose a person and an address, and keep a stray person that is not on the list
    people = sorted(expected["person"])
    del phone.state.entities["person"][people[0]]
    del phone.state.entities["address"][sorted(expected["address"])[1]]
    phone.state.entities["person"]["999999"] = phone.state.entities["person"][people[1]].__class__(
        data={"id": 999999, "address_id": int(sorted(expected["address"])[0])}, version="0"
    )
    assert phone.list_checksum(mine) != phone.last_checksums.get(mine)
    assert (await phone.pull()).ok, phone.last_error
    assert {e: phone.ids(e) for e in expected} == expected
    assert phone.list_checksum(mine) == phone.last_checksums[mine]


# ---------------------------------------------------------------------------- 8. survey answers


async def test_answers_are_checked_against_the_survey(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    address = town.addresses[town.lists[0]][0]
    person = town.people[address][0]
    cases = [
        ("vote", "lab", "applied"),
        ("ethnicity", "Pakistani", "not_allowed:"),
        ("religion", "Muslim", "not_allowed:"),
        ("vote", "reform", "unsupported:"),
        ("favourite_colour", "red", "unsupported:"),
        ("vote", 7, "invalid:"),
    ]
    for key, value, _ in cases:
        phone.record_answer(address, key, value, person_id=person, survey_id=town.survey_id)
    phone.record_answer(address, "ethnic_group", "Black", person_id=person)  # no survey named: still refused
    assert (await phone.push()).ok
    results = {r.mutation.question_key + ":" + str(r.mutation.value): r.reason for r in phone.rejections}  # type: ignore[union-attr]
    for key, value, expected in cases[1:]:
        assert results[f"{key}:{value}"].startswith(expected), results
    assert results["ethnic_group:Black"].startswith("not_allowed:")
    async with sessionmaker() as session:
        stored = (await session.scalars(select(Answer))).all()
    assert [(a.question_key, a.value) for a in stored] == [("vote", "lab")]
    # the three unsupported/invalid answers are kept for review; special category ones keep nothing (privacy rule)
    assert sorted(h.reason.split(':')[0] for h in await held(sessionmaker)) == ['invalid', 'unsupported', 'unsupported']


def test_surveys_refuse_special_category_questions() -> None:
    import pytest

    from server.errors import InvalidInput
    from server.surveys.rules import refuse_special_category, validate_questions

    for question in ({"key": "ethnicity", "kind": "choice", "choices": ["a"]},
                     {"key": "q7", "kind": "text", "text": "What is your religion?"},
                     {"key": "health_condition", "kind": "yes_no"},
                     {"key": "q8", "kind": "choice", "text": "Sexual orientation", "choices": ["x"]}):
        with pytest.raises(InvalidInput):
            refuse_special_category([question])
    validate_questions([{"key": "voting_intention", "kind": "choice", "text": "Who will you vote for?", "options": ["Red"]},
                        {"key": "leaflet_language", "kind": "choice", "options": ["English", "Urdu"]}])


# ---------------------------------------------------------------------------- 9. audit


async def test_each_push_is_audited_with_ids_and_counts_only(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    address = town.addresses[town.lists[0]][0]
    phone.record_contact(address, "spoke")
    phone.record_contact(999_999, "spoke")
    assert (await phone.push()).ok
    async with sessionmaker() as session:
        [audit] = (await session.scalars(select(AuditEvent).where(AuditEvent.action == "sync_push"))).all()
    assert audit.user_id == world.users["canvasser"] and audit.device_id is not None
    assert audit.row_count == 2 and audit.campaign_id == world.campaign_a
    assert audit.detail == {"applied": 1, "rejected": 1}, audit.detail
