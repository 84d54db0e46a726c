"""Erasure: the one path that hard-deletes a person or an address and tells every phone.

Everything personal about the erased record goes in one transaction (the
caller's): the row, the events at or about it, its safety flags, the edit
history of its fields (field versions and conflict records) and the mutations
kept for review that name it (``held_mutations``). An id-only ``Tombstone``
stays for each erased id, and an ``erase`` change row is written for the
record and every dependent one (events, flags, stops), so each phone purges its
copies at its next pull and a later push touching an erased id is rejected
(``erased:``), never resurrected.

Used by the organiser endpoint and ``canvass erase`` (one person or address),
by register replace (the people it removes) and by retention
(``erase_held_mutations`` for a whole campaign; its bulk deletes and
tombstones stay in ``server.retention``).

Concurrency on PostgreSQL: before it reads anything an erasure takes its
campaign's advisory lock exclusively (the class migration 0008's event
triggers take shared). A push that got there first is waited for, and its
events are then seen and erased here; a push whose statement began before the
erasure committed waits in its insert trigger, whose erasure fence (migration
0009) then deletes the rows it inserted about what was erased; a later push
finds the tombstones and rejects its events (``erased:``). On SQLite every
writer holds the database write lock (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, post
from litestar.params import FromPath, JSONBody
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.guards import ORGANISERS, require_role
from server.audit import record_audit
from server.db.models import (
    Address,
    Answer,
    Conflict,
    ContactAttempt,
    FieldVersion,
    Flag,
    HeldMutation,
    Observation,
    Person,
    Tombstone,
    VoidedEvent,
    WalkListStop,
)
from server.dependencies import CurrentUser, DbSession
from server.errors import NotFound
from server.sync.feed import is_postgres, record_change
from server.sync.store import CAMPAIGN_LOCK
from sync.protocol import flag_key

EVENT_MODELS: dict[str, Any] = {
    "contact_attempt": ContactAttempt,
    "answer": Answer,
    "observation": Observation,
}


async def lock_campaign_for_erasure(session: AsyncSession, campaign_id: int) -> None:
    """PostgreSQL: hold the campaign's event lock exclusively until commit (pushes wait, see above)."""
    if is_postgres(session):
        await session.execute(text(f"SELECT pg_advisory_xact_lock({CAMPAIGN_LOCK}, :campaign_id)"),
                              {"campaign_id": campaign_id})


async def _lock_people(session: AsyncSession, campaign_id: int, where: Any) -> list[Person]:
    """The people matching ``where``, after taking the campaign's erasure lock (row locks too)."""
    await lock_campaign_for_erasure(session, campaign_id)
    query = select(Person).where(Person.campaign_id == campaign_id, where).order_by(Person.id)
    if is_postgres(session):
        query = query.with_for_update()
    return list((await session.scalars(query)).all())


async def erase_person(session: AsyncSession, campaign_id: int, person_id: int, erased_by: int | None) -> bool:
    """Hard-delete a person and everything about them; tombstones and erase changes for each id.
    False if the campaign has no such person."""
    people = await _lock_people(session, campaign_id, Person.id == person_id)
    if not people:
        return False
    await _erase_people(session, campaign_id, people, erased_by)
    return True


async def erase_people(session: AsyncSession, campaign_id: int, person_ids: list[int], erased_by: int | None) -> int:
    """Erase many people (register replace); returns how many there were."""
    erased = 0
    for start in range(0, len(person_ids), 500):
        chunk = person_ids[start : start + 500]
        people = await _lock_people(session, campaign_id, Person.id.in_(chunk))
        await _erase_people(session, campaign_id, people, erased_by)
        erased += len(people)
    return erased


async def _erase_people(session: AsyncSession, campaign_id: int, people: list[Person], erased_by: int | None) -> None:
    if not people:
        return
    ids = [p.id for p in people]
    address_of = {p.id: p.address_id for p in people}
    for entity, model in EVENT_MODELS.items():
        rows = (await session.execute(
            select(model.id, model.person_id).where(model.campaign_id == campaign_id, model.person_id.in_(ids))
        )).all()
        for event_id, person_id in rows:
            await _tombstone(session, campaign_id, entity, str(event_id), erased_by, address_of.get(person_id))
        await session.execute(delete(model).where(model.campaign_id == campaign_id, model.person_id.in_(ids)))
    flag_rows = (await session.execute(
        select(Flag.address_id, Flag.person_key).where(Flag.campaign_id == campaign_id, Flag.person_key.in_(ids)).distinct()
    )).all()
    for address_id, person_key in flag_rows:
        await record_change(session, campaign_id=campaign_id, entity="flag", entity_id=flag_key(address_id, person_key),
                            op="erase", address_id=address_id)
    await session.execute(delete(Flag).where(Flag.campaign_id == campaign_id, Flag.person_key.in_(ids)))
    await _erase_field_history(session, "person", ids)
    await session.execute(delete(HeldMutation).where(HeldMutation.campaign_id == campaign_id, HeldMutation.person_id.in_(ids)))
    await session.execute(delete(VoidedEvent).where(VoidedEvent.campaign_id == campaign_id, VoidedEvent.person_id.in_(ids)))
    await session.execute(delete(Person).where(Person.id.in_(ids)))
    for person in people:
        await _tombstone(session, campaign_id, "person", str(person.id), erased_by, person.address_id)
    await session.flush()
    for person in people:
        session.expunge(person) if person in session else None


async def erase_address(session: AsyncSession, campaign_id: int, address_id: int, erased_by: int | None) -> bool:
    """Hard-delete an address, its people, events, flags and stops; tombstones for each id.
    False if the campaign has no such address."""
    people = await _lock_people(session, campaign_id, Person.address_id == address_id)  # people first
    query = select(Address).where(Address.id == address_id, Address.campaign_id == campaign_id)
    if is_postgres(session):
        query = query.with_for_update()
    address = await session.scalar(query)
    if address is None:
        return False
    await _erase_people(session, campaign_id, people, erased_by)
    for entity, model in EVENT_MODELS.items():
        for event_id in list(await session.scalars(
            select(model.id).where(model.campaign_id == campaign_id, model.address_id == address_id)
        )):
            await _tombstone(session, campaign_id, entity, str(event_id), erased_by, address_id)
        await session.execute(delete(model).where(model.campaign_id == campaign_id, model.address_id == address_id))
    for person_key in (await session.scalars(
        select(Flag.person_key).where(Flag.campaign_id == campaign_id, Flag.address_id == address_id).distinct()
    )).all():
        await record_change(session, campaign_id=campaign_id, entity="flag", entity_id=flag_key(address_id, person_key or None),
                            op="erase", address_id=address_id)
    await session.execute(delete(Flag).where(Flag.campaign_id == campaign_id, Flag.address_id == address_id))
    await _erase_field_history(session, "address", [address_id])
    await session.execute(delete(HeldMutation).where(HeldMutation.campaign_id == campaign_id, HeldMutation.address_id == address_id))
    await session.execute(delete(VoidedEvent).where(VoidedEvent.campaign_id == campaign_id, VoidedEvent.address_id == address_id))
    for stop_id in list(await session.scalars(select(WalkListStop.id).where(WalkListStop.address_id == address_id))):
        await _tombstone(session, campaign_id, "stop", str(stop_id), erased_by, address_id)
    await session.execute(delete(WalkListStop).where(WalkListStop.address_id == address_id))
    await session.delete(address)
    await session.flush()
    await _tombstone(session, campaign_id, "address", str(address_id), erased_by, address_id)
    return True


async def erase_held_mutations(session: AsyncSession, campaign_id: int) -> int:
    """Delete every kept mutation payload of a campaign (retention: they hold personal data)."""
    result = await session.execute(delete(HeldMutation).where(HeldMutation.campaign_id == campaign_id))
    await session.execute(delete(VoidedEvent).where(VoidedEvent.campaign_id == campaign_id))  # voided events too
    return int(getattr(result, "rowcount", 0) or 0)


async def _erase_field_history(session: AsyncSession, entity: str, ids: list[int]) -> None:
    await session.execute(delete(FieldVersion).where(FieldVersion.entity == entity, FieldVersion.entity_id.in_(ids)))
    await session.execute(delete(Conflict).where(Conflict.entity == entity, Conflict.entity_id.in_(ids)))


async def _tombstone(
    session: AsyncSession, campaign_id: int, entity: str, entity_id: str, erased_by: int | None, address_id: int | None
) -> None:
    existing = await session.scalar(
        select(Tombstone.id).where(Tombstone.entity == entity, Tombstone.entity_id == entity_id)
    )
    if existing is None:
        session.add(Tombstone(campaign_id=campaign_id, entity=entity, entity_id=entity_id, erased_by=erased_by))
    await record_change(session, campaign_id=campaign_id, entity=entity, entity_id=entity_id, op="erase",
                        address_id=address_id)


# ------------------------------------------------------------------ HTTP


class ErasureRequest(msgspec.Struct, forbid_unknown_fields=True):
    """What to erase: one person or one address of the campaign."""

    entity: Literal["person", "address"]
    id: Annotated[int, msgspec.Meta(ge=1)]


class ErasureOut(msgspec.Struct):
    """The erasure done (phones learn of it at their next pull)."""

    entity: str
    id: int
    erased: bool


async def erase_record(session: AsyncSession, campaign_id: int, entity: str, record_id: int, erased_by: int | None) -> ErasureOut:
    """Erase one person or address; ``NotFound`` if the campaign has none with that id."""
    erase = erase_person if entity == "person" else erase_address
    if not await erase(session, campaign_id, record_id, erased_by):
        raise NotFound(f"No {entity} {record_id} in this campaign.")
    return ErasureOut(entity=entity, id=record_id, erased=True)


class ErasureController(Controller):
    """Organisers and admins erase one person or one address (GDPR erasure requests)."""

    path = "/api/campaigns/{campaign_id:int}/erasures"
    tags = ["sync"]
    guards = [require_role(*ORGANISERS)]

    @post("/", status_code=200)
    async def erase(
        self, campaign_id: FromPath[int], data: JSONBody[ErasureRequest], db_session: DbSession, user: CurrentUser
    ) -> ErasureOut:
        """Hard-delete the record and everything about it; phones receive ``erase`` changes."""
        out = await erase_record(db_session, campaign_id, data.entity, data.id, user.id)
        record_audit(db_session, user, "erase", f"{data.entity}:{data.id}", campaign_id=campaign_id, row_count=1)
        return out
