"""Retention: delete a campaign's personal canvass data a set time after polling day.

A campaign is *due* when ``polling_day + retention_days`` is today or
earlier (UTC dates); a campaign without a polling day is never due.
``run_retention`` (CLI: ``canvass retention run``) applies the policy to
every due campaign, each in the caller's transaction. Running it again is a
no-op apart from data that arrived since.

What is deleted (hard delete, by ``server.sync.erasure.erase_campaign_people``, the one
erasure path: an id-only ``Tombstone`` per record and an
``erase`` change row, so every phone purges its copies at its next pull, and
a later push that touches an erased id is rejected, never resurrected):

* people: register entries (names, elector numbers, franchise), contact
  details with consent, notes, preferred language; their follow-ups;
* canvass events: contact attempts, survey answers, observations;
* safety flags derived from observations (do-not-visit, moved away,
  deceased), sent as ``erase`` of the flag key;
* edit history of personal fields: field versions of people, field
  versions of the household and access notes, and every conflict record
  (losing values are contact details or notes);
* the household and access notes of addresses (free text about the
  residents): cleared, and the address sent as an ``upsert`` so phones that
  still hold it drop the text;
* links left in bookkeeping: mutation receipts (``mutation_results``) keep
  ``(device, seq, status)`` so replays stay idempotent, but lose the entity
  id and the reason text; audit events keep who/what/when/how many but lose
  any ``person_id`` in their detail.

What is kept, because it holds no personal data:

* addresses themselves (public address data: lines, postcode, point), walk
  lists, stops, targets, census areas, surveys, assignments;
* aggregate results: answer counts per census area and walk list
  (``result_answer_cells``), attempts per hour, list and canvasser
  (``result_hour_tally``), and per door, walk list and canvasser only how
  many doors were knocked, knocks and contacts there were
  (``result_door_tally`` and ``result_group_tally`` with the outcome columns
  zeroed, so progress figures survive but no door keeps "refused", "moved
  away", "deceased" or "do not visit");
* tombstones (ids only) and the change feed (ids only);
* user accounts, memberships, devices and audit events (about the
  campaign's own volunteers, not voters; removed by account deletion, not by
  this policy).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import (
    Address,
    Answer,
    AuditEvent,
    Campaign,
    Conflict,
    ContactAttempt,
    FieldVersion,
    Flag,
    FollowUp,
    MutationResult,
    Observation,
    Person,
)
from server.results.tallies import fold_result_tallies
from server.sync.changes import change_row, record_changes
from server.sync.erasure import erase_campaign_people, lock_campaign_for_erasure

EVENT_MODELS: dict[str, Any] = {
    "contact_attempt": ContactAttempt,
    "answer": Answer,
    "observation": Observation,
}
ERASED_ENTITIES = ("person", *EVENT_MODELS)
DOOR_OUTCOME_COLUMNS = (
    "n_spoke",
    "n_not_home",
    "n_refused",
    "n_moved",
    "n_deceased",
    "n_inaccessible",
    "n_come_back",
    "n_do_not_visit",
    "n_wrong_address",
    "n_other",
)
TALLY_TABLES = ("result_door_tally", "result_group_tally", "result_hour_tally", "result_answer_cells")


class RetentionReport(msgspec.Struct, frozen=True):
    """What one campaign's retention run deleted (counts only)."""

    campaign_id: int
    due_on: str
    people: int
    contact_attempts: int
    answers: int
    observations: int
    flags: int
    conflicts: int
    notes_cleared: int
    tombstones: int


def retention_due_on(campaign: Campaign) -> date | None:
    """The first day personal data of a campaign must be gone, or None without a polling day."""
    if campaign.polling_day is None:
        return None
    return campaign.polling_day + timedelta(days=campaign.retention_days)


async def due_campaigns(session: AsyncSession, today: date | None = None) -> list[Campaign]:
    """Campaigns whose retention date is today or earlier."""
    today = today or datetime.now(UTC).date()
    campaigns = await session.scalars(
        select(Campaign).where(Campaign.polling_day.is_not(None)).order_by(Campaign.id)
    )
    return [c for c in campaigns if (due := retention_due_on(c)) is not None and due <= today]


async def run_retention(
    session: AsyncSession, *, today: date | None = None, campaign_id: int | None = None
) -> list[RetentionReport]:
    """Apply the retention policy to every due campaign (or only `campaign_id` if it is due)."""
    reports = []
    for campaign in await due_campaigns(session, today):
        if campaign_id is None or campaign.id == campaign_id:
            reports.append(await apply_retention(session, campaign))
    return reports


async def apply_retention(
    session: AsyncSession, campaign: Campaign, *, erased_by: int | None = None
) -> RetentionReport:
    """Delete one campaign's personal canvass data now (see the module docstring), in the caller's transaction."""
    cid = campaign.id
    await lock_campaign_for_erasure(session, cid)  # no push lands an event in the middle (PostgreSQL)
    await fold_result_tallies(session)  # queued attempts count in the aggregates that survive
    tallies = await _snapshot_tallies(session, cid)

    erasure = await erase_campaign_people(session, cid, erased_by)
    noted = list(
        await session.scalars(
            select(Address.id).where(
                Address.campaign_id == cid,
                (Address.household_note.is_not(None)) | (Address.access_note.is_not(None)),
            )
        )
    )
    address_ids = select(Address.id).where(Address.campaign_id == cid).scalar_subquery()
    await session.execute(
        delete(FieldVersion).where(
            FieldVersion.entity == "address",
            FieldVersion.field.in_(("household_note", "access_note")),
            FieldVersion.entity_id.in_(address_ids),
        )
    )
    if noted:
        await session.execute(
            update(Address)
            .where(Address.campaign_id == cid)
            .values(household_note=None, access_note=None)
        )
    await session.execute(
        update(MutationResult)
        .where(MutationResult.campaign_id == cid, MutationResult.entity.in_(ERASED_ENTITIES))
        .values(entity_id=None, reason="")
    )
    await session.execute(
        update(MutationResult)
        .where(MutationResult.campaign_id == cid, MutationResult.status == "rejected")
        .values(reason="")
    )
    await _scrub_audit(session, cid)
    await _restore_tallies(session, cid, tallies)
    await record_changes(session, [change_row(cid, "address", a, address_id=a) for a in noted])
    await session.flush()
    return RetentionReport(
        campaign_id=cid,
        due_on=str(retention_due_on(campaign)),
        people=erasure.people,
        contact_attempts=erasure.contact_attempts,
        answers=erasure.answers,
        observations=erasure.observations,
        flags=erasure.flags,
        conflicts=erasure.conflicts,
        notes_cleared=len(noted),
        tombstones=erasure.tombstones,
    )


async def _snapshot_tallies(session: AsyncSession, campaign_id: int) -> dict[str, list[dict[str, Any]]]:
    """The campaign's aggregate result rows before events are deleted (their triggers decrement them)."""
    snapshot = {}
    for table in TALLY_TABLES:
        result = await session.execute(text(f"SELECT * FROM {table} WHERE campaign_id = :c"), {"c": campaign_id})
        snapshot[table] = [dict(row) for row in result.mappings().all()]
    return snapshot


async def _restore_tallies(
    session: AsyncSession, campaign_id: int, snapshot: dict[str, list[dict[str, Any]]]
) -> None:
    """Put the aggregates back, with the per-door outcome breakdown zeroed (see the module docstring)."""
    for table, rows in snapshot.items():
        await session.execute(text(f"DELETE FROM {table} WHERE campaign_id = :c"), {"c": campaign_id})
        if not rows:
            continue
        if table in ("result_door_tally", "result_group_tally"):
            rows = [{**row, **dict.fromkeys(DOOR_OUTCOME_COLUMNS, 0)} for row in rows]
        columns = list(rows[0])
        statement = text(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
        )
        for chunk in _chunks(rows, 2000):
            await session.execute(statement, chunk)


async def _scrub_audit(session: AsyncSession, campaign_id: int) -> None:
    """Drop person ids from audit details (the event itself, who/what/when/how many, stays)."""
    for event in await session.scalars(select(AuditEvent).where(AuditEvent.campaign_id == campaign_id)):
        if isinstance(event.detail, dict) and "person_id" in event.detail:
            event.detail = {k: v for k, v in event.detail.items() if k != "person_id"}


def _chunks(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def personal_rows_left(session: AsyncSession, campaign_id: int) -> dict[str, int]:
    """Counts of personal rows still held for a campaign (all zero after retention); for checks and tests."""
    counts = {}
    for name, model in (("people", Person), *((e, m) for e, m in EVENT_MODELS.items()), ("flags", Flag), ("conflicts", Conflict), ("follow_ups", FollowUp)):
        counts[name] = int(
            await session.scalar(select(func.count()).select_from(model).where(model.campaign_id == campaign_id)) or 0
        )
    return counts


__all__ = [
    "RetentionReport",
    "apply_retention",
    "due_campaigns",
    "personal_rows_left",
    "retention_due_on",
    "run_retention",
]
