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
by register replace (``erase_people``: the people it removes) and by retention
(``erase_campaign_people``: every person and event of a campaign, in bulk).
Tombstones and change rows are written in bulk (``_tombstone_all``, through
``server.sync.changes.record_changes``), whatever the number of records.

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

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, post
from litestar.params import FromPath, JSONBody
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.guards import ORGANISERS, require_role
from server.audit import record_audit
from server.db.dialect import is_postgres
from server.db.models import (
    Address,
    Answer,
    Conflict,
    ContactAttempt,
    FieldVersion,
    Flag,
    FollowUp,
    HeldMutation,
    Observation,
    Person,
    Tombstone,
    VoidedEvent,
    WalkListStop,
)
from server.dependencies import CurrentUser, DbSession
from server.errors import NotFound
from server.sync.changes import change_row, record_changes
from sync.protocol import flag_key

CAMPAIGN_LOCK = 0x43414D50
"""Advisory lock class of a campaign's events (migration 0008): erasure holds it exclusively,
pushes (and the event insert triggers) shared."""

_CAMPAIGN_SHARED = text(f"SELECT pg_advisory_xact_lock_shared({CAMPAIGN_LOCK}, :campaign_id)")
_CAMPAIGN_EXCLUSIVE = text(f"SELECT pg_advisory_xact_lock({CAMPAIGN_LOCK}, :campaign_id)")

EVENT_MODELS: dict[str, Any] = {
    "contact_attempt": ContactAttempt,
    "answer": Answer,
    "observation": Observation,
}


async def lock_campaign_for_erasure(session: AsyncSession, campaign_id: int) -> None:
    """PostgreSQL: hold the campaign's event lock exclusively until commit (pushes wait, see above)."""
    if is_postgres(session):
        await session.execute(_CAMPAIGN_EXCLUSIVE, {"campaign_id": campaign_id})


async def hold_off_erasure(session: AsyncSession, campaign_id: int) -> None:
    """PostgreSQL: take the campaign's event lock shared until commit (a push: an erasure waits
    for it; taken before anything else, as the insert triggers take it, so no deadlock)."""
    if is_postgres(session):
        await session.execute(_CAMPAIGN_SHARED, {"campaign_id": campaign_id})


async def is_erased(session: AsyncSession, entity: str, entity_id: int | str) -> bool:
    """True if an id-only tombstone exists for the entity."""
    found = await session.scalar(
        select(Tombstone.id).where(Tombstone.entity == entity, Tombstone.entity_id == str(entity_id))
    )
    return found is not None


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
    erased: list[tuple[str, str, int | None]] = []
    for entity, model in EVENT_MODELS.items():
        rows = (await session.execute(
            select(model.id, model.person_id).where(model.campaign_id == campaign_id, model.person_id.in_(ids))
        )).all()
        erased += [(entity, str(event_id), address_of.get(person_id)) for event_id, person_id in rows]
        await session.execute(delete(model).where(model.campaign_id == campaign_id, model.person_id.in_(ids)))
    flag_rows = (await session.execute(
        select(Flag.address_id, Flag.person_key).where(Flag.campaign_id == campaign_id, Flag.person_key.in_(ids)).distinct()
    )).all()
    flags = [change_row(campaign_id, "flag", flag_key(a, k), "erase", address_id=a) for a, k in flag_rows]
    await session.execute(delete(Flag).where(Flag.campaign_id == campaign_id, Flag.person_key.in_(ids)))
    await session.execute(delete(FollowUp).where(FollowUp.campaign_id == campaign_id, FollowUp.person_id.in_(ids)))
    await _erase_field_history(session, "person", ids)
    await session.execute(delete(HeldMutation).where(HeldMutation.campaign_id == campaign_id, HeldMutation.person_id.in_(ids)))
    await session.execute(delete(VoidedEvent).where(VoidedEvent.campaign_id == campaign_id, VoidedEvent.person_id.in_(ids)))
    await session.execute(delete(Person).where(Person.id.in_(ids)))
    erased += [("person", str(p.id), p.address_id) for p in people]
    await _tombstone_all(session, campaign_id, erased, erased_by, flags)
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
    erased: list[tuple[str, str, int | None]] = []
    for entity, model in EVENT_MODELS.items():
        erased += [(entity, str(event_id), address_id) for event_id in (await session.scalars(
            select(model.id).where(model.campaign_id == campaign_id, model.address_id == address_id)
        )).all()]
        await session.execute(delete(model).where(model.campaign_id == campaign_id, model.address_id == address_id))
    flags = [
        change_row(campaign_id, "flag", flag_key(address_id, person_key or None), "erase", address_id=address_id)
        for person_key in (await session.scalars(
            select(Flag.person_key).where(Flag.campaign_id == campaign_id, Flag.address_id == address_id).distinct()
        )).all()
    ]
    await session.execute(delete(Flag).where(Flag.campaign_id == campaign_id, Flag.address_id == address_id))
    await _erase_field_history(session, "address", [address_id])
    await session.execute(delete(HeldMutation).where(HeldMutation.campaign_id == campaign_id, HeldMutation.address_id == address_id))
    await session.execute(delete(VoidedEvent).where(VoidedEvent.campaign_id == campaign_id, VoidedEvent.address_id == address_id))
    erased += [("stop", str(stop_id), address_id) for stop_id in (await session.scalars(
        select(WalkListStop.id).where(WalkListStop.address_id == address_id)
    )).all()]
    await session.execute(delete(WalkListStop).where(WalkListStop.address_id == address_id))
    await session.delete(address)
    await session.flush()
    erased.append(("address", str(address_id), address_id))
    await _tombstone_all(session, campaign_id, erased, erased_by, flags)
    return True


class CampaignErasure(msgspec.Struct, frozen=True):
    """What ``erase_campaign_people`` deleted (counts only)."""

    people: int
    contact_attempts: int
    answers: int
    observations: int
    flags: int
    conflicts: int
    tombstones: int


async def erase_campaign_people(session: AsyncSession, campaign_id: int, erased_by: int | None) -> CampaignErasure:
    """Erase every person and canvass event of a campaign in bulk (retention), with what hangs off
    them: flags, follow-ups, person field history, every conflict record, every kept mutation;
    tombstones and ``erase`` change rows for each id. Addresses stay (public data).

    The caller takes the erasure lock first (``lock_campaign_for_erasure``): retention also
    reads the result tallies under it before the events go."""
    await lock_campaign_for_erasure(session, campaign_id)
    people = (await session.execute(
        select(Person.id, Person.address_id).where(Person.campaign_id == campaign_id)
    )).all()
    erased: list[tuple[str, str, int | None]] = [("person", str(p), a) for p, a in people]
    counts: dict[str, int] = {}
    for entity, model in EVENT_MODELS.items():
        rows = (await session.execute(
            select(model.id, model.address_id).where(model.campaign_id == campaign_id)
        )).all()
        counts[entity] = len(rows)
        erased += [(entity, str(i), a) for i, a in rows]
    flag_keys = (await session.execute(
        select(Flag.address_id, Flag.person_key).where(Flag.campaign_id == campaign_id).distinct()
    )).all()
    flags = [change_row(campaign_id, "flag", flag_key(a, p or None), "erase", address_id=a) for a, p in flag_keys]
    person_ids = select(Person.id).where(Person.campaign_id == campaign_id).scalar_subquery()
    await session.execute(delete(FollowUp).where(FollowUp.campaign_id == campaign_id))
    await session.execute(delete(Flag).where(Flag.campaign_id == campaign_id))
    conflicts = int(await session.scalar(
        select(func.count()).select_from(Conflict).where(Conflict.campaign_id == campaign_id)
    ) or 0)
    await session.execute(delete(Conflict).where(Conflict.campaign_id == campaign_id))
    await session.execute(
        delete(FieldVersion).where(FieldVersion.entity == "person", FieldVersion.entity_id.in_(person_ids))
    )
    for model in EVENT_MODELS.values():
        await session.execute(delete(model).where(model.campaign_id == campaign_id))
    await session.execute(delete(Person).where(Person.campaign_id == campaign_id))
    await erase_held_mutations(session, campaign_id)
    tombstones = await _tombstone_all(session, campaign_id, erased, erased_by, flags)
    return CampaignErasure(
        people=len(people),
        contact_attempts=counts["contact_attempt"],
        answers=counts["answer"],
        observations=counts["observation"],
        flags=len(flag_keys),
        conflicts=conflicts,
        tombstones=tombstones,
    )


async def erase_held_mutations(session: AsyncSession, campaign_id: int) -> int:
    """Delete every kept mutation payload of a campaign (retention: they hold personal data)."""
    result = await session.execute(delete(HeldMutation).where(HeldMutation.campaign_id == campaign_id))
    await session.execute(delete(VoidedEvent).where(VoidedEvent.campaign_id == campaign_id))  # voided events too
    return int(getattr(result, "rowcount", 0) or 0)


async def _erase_field_history(session: AsyncSession, entity: str, ids: list[int]) -> None:
    await session.execute(delete(FieldVersion).where(FieldVersion.entity == entity, FieldVersion.entity_id.in_(ids)))
    await session.execute(delete(Conflict).where(Conflict.entity == entity, Conflict.entity_id.in_(ids)))


async def _tombstone_all(
    session: AsyncSession,
    campaign_id: int,
    erased: list[tuple[str, str, int | None]],
    erased_by: int | None,
    also: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> int:
    """An id-only tombstone for each erased (entity, id, address) that has none yet, and an
    ``erase`` change row for each (plus the rows in ``also``); returns how many tombstones were added."""
    keys = list(dict.fromkeys((e, i) for e, i, _ in erased))
    existing: set[tuple[str, str]] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        existing |= set((await session.execute(
            select(Tombstone.entity, Tombstone.entity_id).where(Tombstone.entity_id.in_([i for _, i in chunk]))
        )).all())
    now = datetime.now(UTC)
    rows = [
        {"campaign_id": campaign_id, "entity": e, "entity_id": i, "erased_at": now, "erased_by": erased_by}
        for e, i in keys
        if (e, i) not in existing
    ]
    for start in range(0, len(rows), 2000):
        await session.execute(insert(Tombstone.__table__), rows[start : start + 2000])
    await record_changes(
        session, [change_row(campaign_id, e, i, "erase", address_id=a) for e, i, a in erased] + list(also)
    )
    return len(rows)


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
