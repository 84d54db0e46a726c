"""Undo of a record already sent: the ``void_event`` correcting mutation, on SQLite and PostgreSQL."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Answer, Assignment, ContactAttempt, VoidedEvent
from server.results.services import campaign_progress, current_answers
from sync.protocol import RecordAnswer, RecordContactAttempt, VoidEvent
from tests.conftest import World
from tests.sync.conftest import Town, register_phone


async def _progress(sessionmaker: async_sessionmaker[AsyncSession], campaign_id: int) -> tuple[int, int]:
    async with sessionmaker() as session:
        report = await campaign_progress(session, campaign_id)
        await session.commit()
    return report.campaign.attempts, report.campaign.doors_knocked


async def test_void_of_a_sent_attempt_and_answer_takes_them_out_of_results_and_phones(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    assert (await phone.pull()).ok
    list_id = town.lists[0]
    first, second = town.addresses[list_id][0], town.addresses[list_id][1]
    person = town.people[first][0]
    kept = phone.record_contact(second, "not_home", walk_list_id=list_id)
    phone.record_contact(first, "spoke", person_id=person, walk_list_id=list_id)
    answer = phone.record_answer(first, "vote", "grn", person_id=person, walk_list_id=list_id, survey_id=town.survey_id)
    pushed, _ = await phone.sync()
    assert pushed.ok and phone.outbox == []
    assert await _progress(sessionmaker, world.campaign_a) == (3 - 1, 2)  # answers are not attempts

    # undo at the first door: the answer (latest) first, then the attempt
    void = phone.undo_last(first)
    assert isinstance(void, VoidEvent) and void.entity == "answer" and str(void.event_id) == str(answer.id)
    assert str(answer.id) not in phone.events("answer")  # gone from the phone at once
    void2 = phone.undo_last(first)
    assert isinstance(void2, VoidEvent) and void2.entity == "contact_attempt"
    pushed, pulled = await phone.sync()
    assert pushed.ok and pulled is not None and pulled.ok, phone.last_error
    assert phone.rejections == []
    assert phone.events("contact_attempt").keys() == {str(kept.id)}
    assert phone.events("answer") == {}
    assert phone.undo_last(first) is None  # nothing left of this phone's at that door

    assert await _progress(sessionmaker, world.campaign_a) == (1, 1)
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ContactAttempt)) == 1
        assert await session.scalar(select(func.count()).select_from(Answer)) == 0
        voided = {row.event_id: row for row in await session.scalars(select(VoidedEvent))}
        assert set(voided) == {str(answer.id), str(void2.event_id)}
        assert '"grn"' in voided[str(answer.id)].payload  # kept as it was
        assert (await current_answers(session, world.campaign_a)).empty
        cells = await session.scalar(text("SELECT coalesce(sum(n), 0) FROM result_answer_cells"))
        assert cells == 0

    # the same void again (a new seq, e.g. a retry after a reinstall) is a duplicate, changes nothing
    phone._enqueue(void)
    pushed = await phone.push()
    assert pushed.ok and phone.rejections == []
    assert await _progress(sessionmaker, world.campaign_a) == (1, 1)


async def test_void_is_scoped_like_other_writes(
    client: AsyncTestClient[Litestar],
    world: World,
    town: Town,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Only the recorder (or an organiser) voids an event; unknown ids, wrong addresses and
    observations are refused with reasons."""
    list_id = town.lists[0]
    async with sessionmaker() as session:
        session.add(Assignment(walk_list_id=list_id, user_id=world.users["lead"]))
        await session.commit()
    canvasser = await register_phone(client, world, "canvasser", world.campaign_a)
    lead = await register_phone(client, world, "lead", world.campaign_a)
    organiser = await register_phone(client, world, "organiser", world.campaign_a)
    door, other_door = town.addresses[list_id][0], town.addresses[list_id][1]
    attempt = canvasser.record_contact(door, "not_home", walk_list_id=list_id)
    observation = canvasser.record_observation(door, "do_not_visit")
    assert (await canvasser.push()).ok and canvasser.rejections == []

    def void(phone, entity: str, event_id, address_id: int) -> None:  # type: ignore[no-untyped-def]
        phone._enqueue(VoidEvent(entity=entity, event_id=event_id, address_id=address_id, at=phone.clock.now().encode()))

    void(lead, "contact_attempt", attempt.id, door)  # someone else's
    void(lead, "contact_attempt", attempt.id, other_door)  # wrong address
    void(lead, "answer", attempt.id, door)  # no such answer
    void(canvasser, "observation", observation.id, door)  # a safety flag
    assert (await lead.push()).ok and (await canvasser.push()).ok
    reasons = [r.reason.split(":")[0] for r in lead.rejections] + [r.reason.split(":")[0] for r in canvasser.rejections]
    assert sorted(reasons) == ["invalid", "not_allowed", "not_allowed", "unknown"], reasons
    async with sessionmaker() as session:
        assert await session.get(ContactAttempt, str(attempt.id)) is not None

    void(organiser, "contact_attempt", attempt.id, door)  # organisers write campaign-wide
    assert (await organiser.push()).ok and organiser.rejections == []
    async with sessionmaker() as session:
        assert await session.get(ContactAttempt, str(attempt.id)) is None
        assert await session.get(VoidedEvent, str(attempt.id)) is not None


async def test_undo_of_a_queued_event_never_reaches_the_server(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    door = town.addresses[town.lists[0]][0]
    phone.record_contact(door, "not_home")
    undone = phone.undo_last(door)
    assert isinstance(undone, RecordContactAttempt) and phone.outbox == []
    assert not isinstance(undone, RecordAnswer)
    assert (await phone.push()).ok
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ContactAttempt)) == 0
        assert await session.scalar(select(func.count()).select_from(VoidedEvent)) == 0
