"""Contact attempts and answers belong to a campaign that exists, on both databases.

SQLite enforces it with the declared foreign key; PostgreSQL with statement-level
triggers (migration 0008: the per-row foreign-key check was a third of a push's
write statement). Either way: an event naming no campaign is refused, a campaign
that is deleted takes its events with it, and a campaign cannot be deleted from
under a writer that has not committed yet.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Address, Answer, Campaign, ContactAttempt


async def _campaign(session: AsyncSession, slug: str) -> int:
    campaign = Campaign(name=slug, slug=slug)
    session.add(campaign)
    await session.flush()
    return campaign.id


async def _addresses(session: AsyncSession, campaign_id: int, ids: list[int]) -> None:
    """Real address rows for the events below (on PostgreSQL an event about a missing address is
    removed by migration 0009's erasure fence, which would hide what these tests look at)."""
    session.add_all([Address(id=n, campaign_id=campaign_id, lon=-0.1, lat=51.5, building_key=f"b{n}") for n in ids])
    await session.flush()


def _attempt(n: int, campaign_id: int) -> ContactAttempt:
    return ContactAttempt(id=f"attempt-{n}", campaign_id=campaign_id, address_id=n, outcome="spoke",
                          hlc=f"{1_700_000_000_000 + n:013d}-000000-phone")


def _answer(n: int, campaign_id: int) -> Answer:
    return Answer(id=f"answer-{n}", campaign_id=campaign_id, address_id=n, question_key="vote", value="lab",
                  hlc=f"{1_700_000_000_000 + n:013d}-000000-phone")


async def test_an_event_naming_no_campaign_is_refused(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        real = await _campaign(session, "real")
        await _addresses(session, real, [1, 2, 10, 11])
        session.add_all([_attempt(1, real), _attempt(2, real)])
        await session.commit()
    for make in (_attempt, _answer):
        async with sessionmaker() as session:
            session.add_all([make(10, real), make(11, real + 1000)])  # one good row, one orphan
            with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
                await session.commit()
    async with sessionmaker() as session:  # the statement failed whole: no row of it was kept
        assert await session.scalar(select(func.count()).select_from(ContactAttempt)) == 2
        assert await session.scalar(select(func.count()).select_from(Answer)) == 0
        moving = await session.get(ContactAttempt, "attempt-1")
        assert moving is not None
        moving.campaign_id = real + 1000
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            await session.commit()


async def test_deleting_a_campaign_deletes_its_events_only(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        gone, kept = await _campaign(session, "gone"), await _campaign(session, "kept")
        await _addresses(session, gone, [1])
        await _addresses(session, kept, [2])
        session.add_all([_attempt(1, gone), _attempt(2, kept), _answer(1, gone), _answer(2, kept)])
        await session.commit()
    async with sessionmaker() as session:
        await session.execute(delete(Campaign).where(Campaign.id == gone))
        await session.commit()
    async with sessionmaker() as session:
        assert (await session.scalars(select(ContactAttempt.id))).all() == ["attempt-2"]
        assert (await session.scalars(select(Answer.id))).all() == ["answer-2"]


async def test_a_campaign_cannot_be_deleted_under_an_uncommitted_writer(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The writer's events must not outlive their campaign: the delete waits for the writer
    (PostgreSQL: the campaign row is locked FOR KEY SHARE; SQLite: one writer at a time) and
    then takes the committed events with it."""
    async with sessionmaker() as session:
        campaign = await _campaign(session, "busy")
        await session.commit()

    async def delete_campaign() -> None:
        async with sessionmaker() as session:
            await session.execute(delete(Campaign).where(Campaign.id == campaign))
            await session.commit()

    async with sessionmaker() as writer:
        writer.add(_attempt(1, campaign))
        await writer.flush()
        deleting = asyncio.create_task(delete_campaign())
        await asyncio.sleep(0.5)
        assert not deleting.done()
        await writer.commit()
    await asyncio.wait_for(deleting, 30)
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ContactAttempt)) == 0
        assert await session.scalar(text("SELECT count(*) FROM campaigns")) == 0
