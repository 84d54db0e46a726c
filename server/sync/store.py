"""Applying a push: every mutation of a batch in one transaction, idempotent per (device, seq).

The caller's session is the transaction (the request's session, committed by
the framework on success, rolled back on any error), so a push is atomic: a
failed push changes nothing, and the device's receipts (``DeviceReceipt``,
one ``MutationResult`` row per seq) commit together with the effects.

Per mutation:

1. A seq that already has a ``MutationResult`` row is a replay: its stored
   result is returned and nothing else happens.
2. Otherwise it is validated and applied; a mutation that can never be
   applied (malformed, clock too far ahead, unknown or erased record,
   forbidden) is *processed* with status ``rejected`` and a reason, never
   dropped silently and never worth retrying.

Concurrency: the device's receipt row is locked first (``SELECT ... FOR
UPDATE`` on PostgreSQL; SQLite serialises all writers with ``BEGIN
IMMEDIATE``), so two deliveries of the same push cannot both apply it; a
record being edited or flagged is locked the same way.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import (
    Boolean,
    Integer,
    String,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    insert,
    literal_column,
    null,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.dialect import dialect_name, is_postgres
from server.db.models import (
    Address,
    Answer,
    Assignment,
    AuditEvent,
    Conflict,
    ContactAttempt,
    Device,
    DeviceReceipt,
    FieldVersion,
    Flag,
    HeldMutation,
    Observation,
    Person,
    Role,
    Survey,
    Tombstone,
    WalkList,
    WalkListStop,
)
from server.db.models import MutationResult as MutationResultRow
from server.surveys.rules import SPECIAL_CATEGORY_REASON, AnswerRefused, validate_answer
from server.sync.changes import FEED_INSERT_SQL, record_change, record_changes
from server.sync.erasure import hold_off_erasure, is_erased
from sync.clock import HLC, HybridClock, check_skew, parse, system_wall_ms
from sync.merge import FieldState, FlagState, apply_observation, merge_field_edit
from sync.protocol import (
    EDITABLE_FIELDS,
    EditField,
    EventMutation,
    Mutation,
    MutationResult,
    PushResponse,
    RecordAnswer,
    RecordContactAttempt,
    RecordObservation,
    ServerRequest,
    VoidEvent,
    flag_key,
    mutation_hlc,
)

SERVER_CLOCK = HybridClock(f"server-{os.getpid()}", max_skew_ms=None)
"""This process's hybrid logical clock (skew is checked explicitly before ``receive``)."""

_mutation_decoder = msgspec.json.Decoder(Mutation)
_json_encoder = msgspec.json.Encoder()


class RawEnvelope(msgspec.Struct, frozen=True):
    """An envelope whose mutation is decoded one by one, so one bad mutation is rejected alone."""

    seq: int
    mutation: msgspec.Raw


class RawPushRequest(msgspec.Struct, frozen=True):
    """A push as received: envelope list with undecoded mutations."""

    protocol_version: int
    device_id: str
    mutations: list[RawEnvelope]


class Rejected(Exception):
    """A mutation that can never be applied; becomes a ``rejected`` result with this reason
    (which starts with one of ``sync.protocol.REJECTION_PREFIXES``)."""


class Restamp(Exception):
    """An edit stamped beyond the skew bound: not applied, answered ``restamp`` (contract B)."""


WRITERS_CAMPAIGN_WIDE = (Role.admin, Role.organiser)
"""Roles whose devices may write anywhere in their campaign (others: their lists, contract D)."""


class PushContext(msgspec.Struct, kw_only=True):
    """Who is pushing: the device row's ids and the user's role in the device's campaign."""

    device_id: int
    node_id: str
    user_id: int
    campaign_id: int
    role: Role | None
    max_skew_ms: int
    wall: Any = system_wall_ms
    cache: Any = None
    """A ``PushCache`` while a push is being applied (bulk look-ups for plain events)."""
    protocol_version: int | None = None
    """Set for a phone's push: the device row records it and the sync time with the receipts."""
    check_node: bool = True
    """False when an organiser re-applies a kept mutation: its stamps carry the phone's node."""

    @property
    def scoped(self) -> bool:
        """True when writes are limited to the user's walk lists (everyone but organisers and admins)."""
        return self.role not in WRITERS_CAMPAIGN_WIDE


def _now() -> datetime:
    return datetime.now(UTC)


_STATEMENTS: dict[tuple[str, str], Any] = {}
"""Statements built once per dialect and executed with parameters (building the expression
tree of a query costs more Python than SQLAlchemy's compiled cache saves)."""


def _statement(session: AsyncSession, name: str, build: Any) -> Any:
    dialect = dialect_name(session)
    statement = _STATEMENTS.get((dialect, name))
    if statement is None:
        statement = _STATEMENTS[(dialect, name)] = build(dialect == "postgresql")
    return statement


def _build_lock_receipt(postgres: bool) -> Any:
    statement = (pg_insert if postgres else sqlite_insert)(DeviceReceipt).values(
        device_id=bindparam("device_id"), last_seq=0, updated_at=bindparam("now")
    )
    return statement.on_conflict_do_update(
        index_elements=[DeviceReceipt.device_id], set_={"updated_at": statement.excluded.updated_at}
    ).returning(DeviceReceipt.last_seq)


async def _lock_receipt(session: AsyncSession, device_id: int) -> int:
    """Create or lock the device's receipt row (one upsert: ON CONFLICT DO UPDATE locks the row
    on PostgreSQL; SQLite holds the write lock already); returns its ``last_seq``."""
    statement = _statement(session, "lock_receipt", _build_lock_receipt)
    return int(await session.scalar(statement, {"device_id": device_id, "now": _now()}) or 0)


def _any_param(postgres: bool, column: Any, name: str) -> Any:
    """``column IN :name`` as a parameter of a cached statement. On PostgreSQL
    ``column = ANY(:name)``: one array parameter, so one prepared statement whatever the
    batch size, and the primary-key index even while the table's statistics still say it is
    empty (an expanded IN list then got a sequential scan). SQLite: an expanding IN list."""
    if postgres:
        # text[] (not varchar(n)[]): a generic plan would otherwise re-cast the array per row
        element = Text() if isinstance(column.type, String) else column.type
        return column == any_(bindparam(name, type_=ARRAY(element)))
    return column.in_(bindparam(name, expanding=True))


class Decoded(msgspec.Struct):
    """An envelope with its mutation decoded once (``error`` says why it could not be)."""

    envelope: RawEnvelope
    mutation: Any = None
    error: str | None = None
    event_id: str | None = None
    """A contact attempt's or answer's id as text (made once: ``str(UUID)`` is not cheap)."""
    repeated: bool = False
    """A second (or later) copy of a seq in one batch: rejected ``duplicate_seq:`` and kept."""


def _decode_error(exc: msgspec.DecodeError) -> str:
    """The rejection reason of an undecodable mutation: a value this server does not know (an op,
    outcome code or observation kind of a newer app) is ``unsupported:``, anything else ``invalid:``."""
    message = str(exc)
    if message.startswith(("Invalid value", "Invalid enum value")) and message.endswith(
        ("`$.op`", "`$.outcome`", "`$.kind`")
    ):
        return f"unsupported: {message}"
    return f"invalid: malformed mutation: {message}"


def _decode(envelopes: list[RawEnvelope]) -> list[Decoded]:
    """Decode every mutation once, in seq order; a seq's later copies in the batch are marked repeated."""
    out: list[Decoded] = []
    seen: set[int] = set()
    for envelope in sorted(envelopes, key=lambda e: e.seq):
        if envelope.seq in seen:
            out.append(Decoded(envelope, error=f"duplicate_seq: seq {envelope.seq} was sent twice in one push",
                               repeated=True))
            continue
        seen.add(envelope.seq)
        try:
            mutation = _mutation_decoder.decode(envelope.mutation)
        except msgspec.DecodeError as exc:
            out.append(Decoded(envelope, error=_decode_error(exc)))
            continue
        plain = isinstance(mutation, (RecordContactAttempt, RecordAnswer))
        out.append(Decoded(envelope, mutation, event_id=str(mutation.id) if plain else None))
    return out


class Batch(msgspec.Struct):
    """A processed push before its writes: results, result rows, where each queued event sits."""

    results: list[MutationResult]
    result_rows: list[dict[str, Any]]
    queued: dict[tuple[str, str], int]
    """Applied plain event (entity, id) -> its index in ``results``."""
    last_seq: int
    held_rows: list[dict[str, Any]] = []
    """Mutations not applied as sent, with their payloads (``HeldMutation`` rows to insert)."""

    def response(self, already: set[tuple[str, str]]) -> PushResponse:
        """The push's answer once the writes are done: events found already stored are duplicates."""
        for key in already:
            at = self.queued[key]
            self.results[at] = msgspec.structs.replace(
                self.results[at], status="duplicate", reason=_DUPLICATE_EVENT
            )
        return PushResponse(results=self.results, last_seq=self.last_seq, server_time_ms=system_wall_ms())

    def counts(self) -> dict[str, int]:
        """How many results of each status (the push's audit detail: counts, no personal data)."""
        out: dict[str, int] = {}
        for result in self.results:
            out[result.status] = out.get(result.status, 0) + 1
        return out


def _build_stored_results(postgres: bool) -> Any:
    """The recorded results of the device's seqs in ``:seqs`` (replays)."""
    return select(
        MutationResultRow.seq, MutationResultRow.status, MutationResultRow.reason, MutationResultRow.server_hlc
    ).where(
        MutationResultRow.device_id == bindparam("device_id"),
        _any_param(postgres, MutationResultRow.seq, "seqs"),
    )


async def apply_push(
    session: AsyncSession, context: PushContext, envelopes: list[RawEnvelope]
) -> PushResponse:
    """Apply a batch in seq order inside the caller's transaction; replays return stored results."""
    await hold_off_erasure(session, context.campaign_id)  # first, as the insert triggers take it
    last_seq = await _lock_receipt(session, context.device_id)
    return await _apply_decoded(session, context, _decode(envelopes), last_seq)


async def apply_mutations(session: AsyncSession, context: PushContext, mutations: Sequence[Any]) -> PushResponse:
    """The server's own writes (paper results keyed by an organiser, conflict resolutions): typed
    mutations straight into the push path, numbered after the device's receipt, with no JSON
    decode. Each is still encoded once, as that is the payload a rejection keeps for review."""
    await hold_off_erasure(session, context.campaign_id)
    last_seq = await _lock_receipt(session, context.device_id)
    decoded = [
        Decoded(
            RawEnvelope(seq=seq, mutation=msgspec.Raw(_json_encoder.encode(mutation))),
            mutation,
            event_id=str(mutation.id) if isinstance(mutation, (RecordContactAttempt, RecordAnswer)) else None,
        )
        for seq, mutation in enumerate(mutations, start=last_seq + 1)
    ]
    return await _apply_decoded(session, context, decoded, last_seq)


async def _apply_decoded(session: AsyncSession, context: PushContext, decoded: list[Decoded], last_seq: int) -> PushResponse:
    """The push once decoded, the device's receipt locked at ``last_seq``."""
    # Only a seq at or below the receipt's last_seq can have been processed before (last_seq is
    # the highest processed): a push of new seqs, the common case, needs no look-up.
    seen_before = [d.envelope.seq for d in decoded if d.envelope.seq <= last_seq]
    stored = {}
    if seen_before:
        query = _statement(session, "stored_results", _build_stored_results)
        params = {"device_id": context.device_id, "seqs": seen_before}
        stored = {row.seq: row for row in (await session.execute(query, params)).all()}
    fresh = [d for d in decoded if d.envelope.seq not in stored]
    cache, _ = await _prefetch(session, context, fresh)
    batch = await _process(session, context, decoded, stored, cache, last_seq)
    already = await _FINISHERS[dialect_name(session)](session, context, cache, batch)
    assert already is not None  # the receipt is locked: nothing can have moved it
    return batch.response(already)


async def receive_push(
    session: AsyncSession,
    context: PushContext,
    envelopes: list[RawEnvelope],
    autocommit: Callable[[], AbstractAsyncContextManager[AsyncSession]],
) -> PushResponse:
    """A phone's push, the way this database applies it fastest: on PostgreSQL a push of only new
    contact attempts and answers, the bulk of what phones send, is first tried on an
    ``autocommit`` session (``apply_plain_push``: two statements, no transaction round trips);
    anything it declines, and every push on SQLite, is applied in ``session``'s transaction."""
    if is_postgres(session):
        async with autocommit() as plain_session:
            response = await apply_plain_push(plain_session, context, envelopes)
        if response is not None:
            return response
    return await apply_push(session, context, envelopes)


async def apply_plain_push(
    session: AsyncSession, context: PushContext, envelopes: list[RawEnvelope]
) -> PushResponse | None:
    """PostgreSQL, on an autocommit session: a push of new contact attempts and answers in two
    statements, no BEGIN/COMMIT; None means "use ``apply_push``" (nothing was written).

    Why: each round trip costs the server a socket write and PostgreSQL a wake-up, and a
    transaction needs four of them besides the work (BEGIN, locking the receipt, COMMIT).
    Here the look-ups, the device's receipt included, are one read, and the writes are one
    statement that first moves the receipt from the ``last_seq`` that read saw
    (compare-and-set); every insert depends on that move. One statement is atomic by itself,
    so a failed or crashed push changes nothing, as in a transaction. If another delivery
    of this device's pushes moved the receipt in between, the statement writes nothing and
    the push is applied the ordinary way (locking), as is a push holding a replayed seq or
    anything but contact attempts and answers. SQLite always declines (its writers are
    serialised, and BEGIN IMMEDIATE is what makes its change-feed counter safe).
    """
    if not is_postgres(session):
        return None
    decoded = _decode(envelopes)
    if any(
        d.mutation is not None and not isinstance(d.mutation, (RecordContactAttempt, RecordAnswer))
        for d in decoded
    ):
        return None
    cache, last_seq = await _prefetch(session, context, decoded, with_receipt=True)
    if any(d.envelope.seq <= last_seq for d in decoded):
        return None
    batch = await _process(session, context, decoded, {}, cache, last_seq)
    finished = await _finish_push_pg(session, context, cache, batch, seen_last_seq=last_seq)
    return None if finished is None else batch.response(finished)


async def _process(
    session: AsyncSession,
    context: PushContext,
    decoded: list[Decoded],
    stored: dict[int, Any],
    cache: PushCache,
    last_seq: int,
) -> Batch:
    """Every mutation in seq order: a stored result for a replay, else checked and applied
    (plain events only queued in ``cache`` for the writes at the end)."""
    batch = Batch(results=[], result_rows=[], queued={}, last_seq=last_seq, held_rows=[])
    context.cache = cache
    try:
        for item in decoded:
            seq = item.envelope.seq
            previous = stored.get(seq)
            if item.repeated:
                # not a receipt (the seq's first copy has it); kept unless this is a replay
                assert item.error is not None
                result = MutationResult(seq=seq, status="rejected", reason=item.error, server_hlc="")
                batch.results.append(result)
                if previous is None:
                    batch.held_rows.append(_held_row(context, item, result, "unknown", None, None))
                continue
            if previous is not None:
                batch.results.append(
                    MutationResult(
                        seq=previous.seq,
                        status=previous.status,
                        reason=previous.reason,
                        server_hlc=previous.server_hlc,
                    )
                )
                continue
            queued_before = len(cache.attempt_rows) + len(cache.answer_rows)
            result, op, entity, entity_id = await _apply_one(session, context, item)
            if (
                entity is not None
                and entity_id is not None
                and len(cache.attempt_rows) + len(cache.answer_rows) > queued_before
            ):
                batch.queued[(entity, entity_id)] = len(batch.results)
            batch.results.append(result)
            if _is_held(result):
                batch.held_rows.append(_held_row(context, item, result, op, entity, entity_id))
            batch.result_rows.append(
                {
                    "device_id": context.device_id,
                    "seq": seq,
                    "campaign_id": context.campaign_id,
                    "op": op,
                    "status": result.status,
                    "reason": result.reason,
                    "entity": entity,
                    "entity_id": entity_id,
                    "server_hlc": result.server_hlc,
                    "user_id": context.user_id,
                }
            )
            batch.last_seq = max(batch.last_seq, seq)
    finally:
        context.cache = None
    return batch


def _is_held(result: MutationResult) -> bool:
    """Whether a result's mutation is kept with its payload for review (contract C). Not when it
    touches an erased record (keeping it would bring the erased person's data back), nor when it
    is a special category answer (keeping it would hold the very datum the privacy rule forbids)."""
    if result.reason.startswith(("erased:", SPECIAL_CATEGORY_REASON)):
        return False
    return result.status in ("rejected", "restamp") or (
        result.status == "conflict" and result.reason.startswith("conflicting_duplicate:")
    )


def _held_row(
    context: PushContext, item: Decoded, result: MutationResult, op: str, entity: str | None, entity_id: str | None
) -> dict[str, Any]:
    """A ``HeldMutation`` row: the mutation's payload as sent, and the ids erasure finds it by."""
    mutation = item.mutation
    address_id = getattr(mutation, "address_id", None)
    person_id = getattr(mutation, "person_id", None)
    if isinstance(mutation, EditField):
        address_id = mutation.entity_id if mutation.entity == "address" else None
        person_id = mutation.entity_id if mutation.entity == "person" else None
    return {
        "campaign_id": context.campaign_id,
        "device_id": context.device_id,
        "user_id": context.user_id,
        "seq": item.envelope.seq,
        "op": op,
        "status": result.status,
        "reason": result.reason,
        "entity": entity,
        "entity_id": entity_id,
        "address_id": address_id,
        "person_id": person_id,
        "payload": bytes(item.envelope.mutation).decode("utf-8", "replace"),
        "review": "open",
    }


async def _finish_push(
    session: AsyncSession, context: PushContext, cache: PushCache, batch: Batch
) -> set[tuple[str, str]]:
    """SQLite (PostgreSQL: ``_finish_push_pg``): write what the push queued (events, feed rows, results, receipt); returns the events
    that were already stored (duplicates). One multi-row INSERT per table, insert-if-absent:
    an event id already stored (an earlier push, or another device's push committing at the
    same moment) is a duplicate, found by the INSERT itself."""
    already: set[tuple[str, str]] = set()
    for entity, model, rows in (
        ("contact_attempt", ContactAttempt, cache.attempt_rows),
        ("answer", Answer, cache.answer_rows),
    ):
        inserted = await _insert_if_absent(session, model, rows)
        already |= {(entity, row["id"]) for row in rows if row["id"] not in inserted}
    result_rows, last_seq = batch.result_rows, batch.last_seq
    for row in result_rows:
        if (row["entity"], row["entity_id"]) in already and row["status"] == "applied":
            row.update(status="duplicate", reason=_DUPLICATE_EVENT)
    await record_changes(  # one stamp for the push's rows, as the xid8 of _FINISH_PUSH_PG
        session, [f for f in cache.feed_rows if (f["entity"], f["entity_id"]) not in already]
    )
    await _insert_rows(session, MutationResultRow, result_rows)
    now = _now()
    await _insert_rows(session, HeldMutation, [{**row, "created_at": now} for row in batch.held_rows])
    if context.protocol_version is not None:  # a phone's push: one audit event, ids and counts only
        counts = batch.counts()
        for key in already:
            if batch.results[batch.queued[key]].status == "applied":
                counts["applied"] -= 1
                counts["duplicate"] = counts.get("duplicate", 0) + 1
        session.add(AuditEvent(
            at=now, user_id=context.user_id, device_id=context.device_id, campaign_id=context.campaign_id,
            action="sync_push", resource="/api/sync/push", row_count=len(batch.results),
            detail={k: v for k, v in counts.items() if v},
        ))
    await session.execute(
        update(DeviceReceipt)
        .where(DeviceReceipt.device_id == context.device_id)
        .values(last_seq=last_seq, updated_at=now)
    )
    if context.protocol_version is not None:
        await session.execute(
            update(Device)
            .where(Device.id == context.device_id)
            .values(last_sync_at=now, protocol_version=context.protocol_version)
        )
    return already


def _recordset(parameter: str, columns: str) -> str:
    """Rows sent as one JSON array of objects: ``json_to_recordset`` with the columns' types.

    Why JSON rather than an array parameter per column: asyncpg checks every element of
    a Python list against the collections ABCs as it encodes an array (about half a
    millisecond of a push's CPU for its 2,000 cells); msgspec writes the rows' JSON in C
    and PostgreSQL parses it in C. Keys the column list does not name are ignored.
    """
    return f"json_to_recordset(CAST(:{parameter} AS json)) AS u({columns})"


_ATTEMPTS = _recordset(
    "attempts", "id text, address_id integer, person_id integer, walk_list_id integer, outcome text, "
    "hlc text, at timestamptz, time_untrusted boolean")
_ANSWERS = _recordset(
    "answers", "id text, address_id integer, person_id integer, walk_list_id integer, survey_id integer, "
    "question_key text, value json, hlc text, time_untrusted boolean")
_RESULTS = _recordset(
    "results", "seq bigint, op text, status text, reason text, entity text, entity_id text, server_hlc text")
_HELD = _recordset(
    "held", "seq bigint, op text, status text, reason text, entity text, entity_id text, address_id integer, "
    "person_id integer, payload text")


_FEED_FROM_STORED = FEED_INSERT_SQL.format(
    campaign_id=":campaign_id", entity="entity", entity_id="id", op="'upsert'", walk_list_id="NULL",
    address_id="address_id", now=":now",
)
"""The change rows of the events a push stored (``server.sync.changes`` owns their stamps)."""


def _finish_push_sql(optimistic: bool) -> str:
    """PostgreSQL: everything a push writes, in one statement (one round trip instead of six).

    Data-modifying CTEs run together on one snapshot: the events are inserted if
    absent, and what came back (``stored``) decides the feed rows and which queued
    events' results become ``duplicate``; the receipt and the device row are stamped
    alongside, the kept mutations (``held_mutations``) and the push's audit event written.
    Each table's rows go as one JSON parameter (``_recordset``), so the
    statement text, and with it asyncpg's prepared statement, is the same whatever the batch.

    Erasure cannot race it: the insert triggers take the campaign's advisory lock shared
    (migrations 0008, 0009), which an erasure holds exclusively, and then delete any row
    inserted about a person or address an erasure removed meanwhile (as if this push came
    first); an erasure that starts later waits for this statement and erases what it wrote.

    ``optimistic`` (``apply_plain_push``, no transaction around it): the receipt moves only
    from the ``last_seq`` the push's read saw (``:seen_last_seq``; a concurrent writer's
    row lock is waited for and its new value re-checked), every other part depends on
    that move, and the last row says whether it happened.
    """
    gate = " WHERE EXISTS (SELECT FROM receipt)" if optimistic else ""
    also = gate.replace(" WHERE", " AND")
    receipt = (
        """receipt AS (
    INSERT INTO device_receipts AS r (device_id, last_seq, updated_at) VALUES (:device_id, :last_seq, :now)
    ON CONFLICT (device_id) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at
    WHERE r.last_seq = :seen_last_seq
    RETURNING device_id
), """
        if optimistic
        else "receipt AS (\n    UPDATE device_receipts SET last_seq = :last_seq, updated_at = :now "
        "WHERE device_id = :device_id\n), "
    )
    moved = "\nUNION ALL SELECT 'receipt', NULL FROM receipt" if optimistic else ""
    return f"""
WITH {receipt}att AS (
    INSERT INTO contact_attempts (id, campaign_id, address_id, person_id, walk_list_id, outcome, hlc, at,
                                  user_id, device_id, received_at, time_untrusted)
    SELECT u.id, :campaign_id, u.address_id, u.person_id, u.walk_list_id, u.outcome, u.hlc, u.at,
           :user_id, :device_id, :now, u.time_untrusted
    FROM {_ATTEMPTS}{gate}
    ON CONFLICT (id) DO NOTHING
    RETURNING id, address_id
), ans AS (
    INSERT INTO answers (id, campaign_id, address_id, person_id, walk_list_id, survey_id, question_key, value,
                         hlc, user_id, device_id, received_at, time_untrusted)
    SELECT u.id, :campaign_id, u.address_id, u.person_id, u.walk_list_id, u.survey_id, u.question_key,
           u.value, u.hlc, :user_id, :device_id, :now, u.time_untrusted
    FROM {_ANSWERS}{gate}
    ON CONFLICT (id) DO NOTHING
    RETURNING id, address_id
), stored AS (
    SELECT 'contact_attempt' AS entity, id, address_id FROM att
    UNION ALL SELECT 'answer', id, address_id FROM ans
), feed AS (
    {_FEED_FROM_STORED}
    FROM stored
), results AS (
    INSERT INTO mutation_results (device_id, seq, campaign_id, op, status, reason, entity, entity_id, server_hlc,
                                  user_id, created_at)
    SELECT :device_id, u.seq, :campaign_id, u.op,
           CASE WHEN d.id IS NOT NULL AND u.status = 'applied' THEN 'duplicate' ELSE u.status END,
           CASE WHEN d.id IS NOT NULL AND u.status = 'applied' THEN :duplicate ELSE u.reason END,
           u.entity, u.entity_id, u.server_hlc,
           :user_id, :now
    FROM {_RESULTS}
    LEFT JOIN (
        SELECT q.entity, q.entity_id AS id FROM json_to_recordset(CAST(:queued AS json)) AS q(entity text, entity_id text)
        EXCEPT SELECT entity, id FROM stored
    ) AS d ON d.entity = u.entity AND d.id = u.entity_id{gate}
), held AS (
    INSERT INTO held_mutations (campaign_id, device_id, user_id, seq, op, status, reason, entity, entity_id,
                                address_id, person_id, payload, review, created_at)
    SELECT :campaign_id, :device_id, :user_id, u.seq, u.op, u.status, u.reason, u.entity, u.entity_id,
           u.address_id, u.person_id, u.payload, 'open', :now
    FROM {_HELD}{gate}
), audit AS (
    INSERT INTO audit_events (at, user_id, device_id, campaign_id, action, resource, row_count, detail)
    SELECT :now, :user_id, :device_id, :campaign_id, 'sync_push', '/api/sync/push', :result_count,
           CAST(:audit_detail AS json)
    WHERE CAST(:protocol_version AS integer) IS NOT NULL{also}
), device AS (
    UPDATE devices SET last_sync_at = :now, protocol_version = COALESCE(:protocol_version, protocol_version)
    WHERE id = :device_id AND CAST(:protocol_version AS integer) IS NOT NULL{also}
)
SELECT entity, id FROM stored{moved}
"""


_FINISH_PUSH_PG = {optimistic: text(_finish_push_sql(optimistic)) for optimistic in (False, True)}


async def _finish_push_pg(
    session: AsyncSession,
    context: PushContext,
    cache: PushCache,
    batch: Batch,
    seen_last_seq: int | None = None,
) -> set[tuple[str, str]] | None:
    """``_finish_push`` on PostgreSQL, as ``_FINISH_PUSH_PG``: returns the events already stored;
    with ``seen_last_seq`` the optimistic variant, which returns None if the receipt had moved
    (nothing was written)."""
    params: dict[str, Any] = {
        "campaign_id": context.campaign_id,
        "user_id": context.user_id,
        "device_id": context.device_id,
        "now": _now(),
        "last_seq": batch.last_seq,
        "seen_last_seq": seen_last_seq,
        "protocol_version": context.protocol_version,
        "duplicate": _DUPLICATE_EVENT,
        "result_count": len(batch.results),
    }
    encode = _json_encoder.encode
    params["attempts"] = encode(cache.attempt_rows).decode()
    params["answers"] = encode(cache.answer_rows).decode()
    params["results"] = encode(batch.result_rows).decode()
    params["queued"] = encode(cache.feed_rows).decode()
    params["held"] = encode(batch.held_rows).decode()
    params["audit_detail"] = encode(batch.counts()).decode()
    queued = [(row["entity"], row["entity_id"]) for row in cache.feed_rows]
    rows = await session.execute(_FINISH_PUSH_PG[seen_last_seq is not None], params)
    stored: set[tuple[str, str]] = set()
    moved = False
    for entity, event_id in rows:
        if entity == "receipt":
            moved = True
        else:
            stored.add((entity, event_id))
    if seen_last_seq is not None and not moved:
        return None
    return set(queued) - stored


_DUPLICATE_EVENT = "event already recorded"


async def _insert_rows(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    """Core executemany on the table (compiled once and cached; asyncpg pipelines the rows)."""
    if rows:
        await session.execute(insert(model.__table__), rows)


async def _insert_if_absent(
    session: AsyncSession, model: Any, rows: list[dict[str, Any]]
) -> set[str]:
    """INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id (SQLite); returns the ids actually
    inserted. With a list of rows SQLAlchemy sends it as multi-row VALUES statements."""
    if not rows:
        return set()
    table = model.__table__
    statement = sqlite_insert(table).on_conflict_do_nothing().returning(table.c.id)
    return set((await session.execute(statement, rows)).scalars())


async def _apply_one(
    session: AsyncSession, context: PushContext, item: Decoded
) -> tuple[MutationResult, str, str | None, str | None]:
    """Apply one mutation; returns its result and what to record about it."""
    op, entity, entity_id = "unknown", None, None
    envelope = item.envelope
    try:
        if envelope.seq < 1:
            raise Rejected("invalid: seq must be >= 1")
        if item.error is not None:
            raise Rejected(item.error)
        mutation = item.mutation
        op = type(mutation).__struct_config__.tag  # type: ignore[assignment]
        entity, entity_id = _target(mutation) if item.event_id is None else (
            _EVENT_ENTITY[type(mutation)], item.event_id)
        stamp = mutation_hlc(mutation)
        remote, untrusted = (
            _check_stamp(context, stamp, edit=isinstance(mutation, EditField)) if stamp is not None else (None, False)
        )
        if isinstance(mutation, (RecordContactAttempt, RecordAnswer)):
            # validated entirely before it writes anything, so no savepoint is needed
            assert entity_id is not None and remote is not None
            status, reason = await _apply_plain_event(session, context, mutation, entity_id, remote, untrusted)
        else:
            async with session.begin_nested():
                status, reason = await _dispatch(session, context, mutation, untrusted)
    except Rejected as exc:
        status, reason = "rejected", str(exc)
    except Restamp as exc:
        status, reason = "restamp", str(exc)
    server_hlc = SERVER_CLOCK.now().encode()
    return (
        MutationResult(seq=envelope.seq, status=status, reason=reason, server_hlc=server_hlc),  # type: ignore[arg-type]
        op,
        entity,
        entity_id,
    )


def _target(mutation: Mutation) -> tuple[str | None, str | None]:
    """The (entity, id) a mutation's receipt names (``TARGETS``), or (None, None)."""
    target = TARGETS.get(type(mutation))
    return (None, None) if target is None else target(mutation)


def _check_stamp(context: PushContext, stamp: str, *, edit: bool) -> tuple[HLC, bool]:
    """Parse a stamp; reject one from another node. Beyond the skew bound an edit is answered
    ``restamp`` and an event is kept with its time marked untrusted (contract B); neither moves
    the server clock. Returns (the stamp, whether its time is untrusted)."""
    remote = parse(stamp)
    if context.check_node and remote.node != context.node_id:
        raise Rejected(f"invalid: hlc node {remote.node!r} is not this device's node id")
    if not check_skew(remote, context.wall(), context.max_skew_ms):
        if edit:
            raise Restamp(
                f"restamp: stamped {remote.wall_ms - context.wall()} ms ahead of the server "
                f"(limit {context.max_skew_ms} ms); adopt server_time_ms and queue it again"
            )
        return remote, True
    SERVER_CLOCK.receive(remote)
    return remote, False


def _work_time(stamp: HLC | None, untrusted: bool) -> datetime:
    """When work was recorded, for write scope: the stamp's wall time, or now if it is untrusted."""
    if stamp is None or untrusted:
        return _now()
    return datetime.fromtimestamp(stamp.wall_ms / 1000, UTC)


async def _check_scope(
    session: AsyncSession, context: PushContext, address_id: int | None, at: datetime
) -> None:
    """Contract D: a scoped device writes only at addresses on walk lists its user holds now or
    held at ``at`` (the server's assignment history: ``assignments`` rows are ended, not deleted)."""
    if not context.scoped:
        return
    cache: PushCache | None = context.cache
    if address_id is not None and cache is not None and address_id in cache.held:
        return
    if address_id is not None:
        query = _statement(session, "held_at", _build_held_at)
        found = await session.scalar(
            query, {"user_id": context.user_id, "address_id": address_id, "campaign_id": context.campaign_id, "at": at}
        )
        if found is not None:
            return
    raise Rejected(f"out_of_scope: address {address_id} is not on a walk list you hold or held when this was recorded")


def _build_held_at(postgres: bool) -> Any:
    """A walk list of the user's, in the campaign, with the address on it, held now or at ``:at``."""
    return (
        select(Assignment.id)
        .join(WalkListStop, WalkListStop.walk_list_id == Assignment.walk_list_id)
        .join(WalkList, WalkList.id == Assignment.walk_list_id)
        .where(
            Assignment.user_id == bindparam("user_id"),
            WalkListStop.address_id == bindparam("address_id"),
            WalkList.campaign_id == bindparam("campaign_id"),
            or_(
                Assignment.ended_at.is_(None),
                and_(Assignment.assigned_at <= bindparam("at"), Assignment.ended_at > bindparam("at")),
            ),
        )
        .limit(1)
    )


async def _dispatch(
    session: AsyncSession, context: PushContext, mutation: Mutation, untrusted: bool = False
) -> tuple[str, str]:
    """Apply a mutation that is not a plain event, in its own savepoint (see ``APPLIERS``)."""
    return await APPLIERS[type(mutation)](session, context, mutation, untrusted)


async def _check_address(
    session: AsyncSession, context: PushContext, address_id: int, *, lock: bool = False
) -> Address:
    query = select(Address).where(Address.id == address_id)
    if lock:
        query = query.with_for_update()
    address = await session.scalar(query)
    if address is None or address.campaign_id != context.campaign_id:
        if await is_erased(session, "address", address_id):
            raise Rejected(f"erased: address {address_id} was erased")
        raise Rejected(f"unknown: address {address_id} is unknown")
    return address


async def _check_person(
    session: AsyncSession, context: PushContext, person_id: int | None, address_id: int | None
) -> Person | None:
    if person_id is None:
        return None
    person = await session.get(Person, person_id)  # erasure waits for this push (campaign lock)
    if person is None or person.campaign_id != context.campaign_id:
        if await is_erased(session, "person", person_id):
            raise Rejected(f"erased: person {person_id} was erased")
        raise Rejected(f"unknown: person {person_id} is unknown")
    if address_id is not None and person.address_id != address_id:
        raise Rejected(f"invalid: person {person_id} is not registered at address {address_id}")
    return person


class PushCache(msgspec.Struct, kw_only=True):
    """Bulk look-ups for a push's contact attempts and answers, and their feed rows to insert.

    Why: applying events one by one costs several round trips each (erased?
    known? address? person?); a phone pushes them 100 at a time, so the push
    asks each question once for the whole batch and inserts the events and
    their feed rows with one multi-row INSERT per table at the end.
    Nothing the cache holds can change inside one push (no mutation creates
    or deletes addresses, people, lists, surveys or tombstones).
    """

    event_ids: dict[str, set[str]]
    """Event ids seen earlier in this push (ids already stored are found by the INSERT itself)."""
    tombstones: set[tuple[str, str]]
    addresses: dict[int, int]
    people: dict[int, tuple[int, int | None]]
    walk_lists: dict[int, int]
    surveys: dict[int, int]
    batch_events: dict[tuple[str, str], Any] = {}
    """Events already applied in this push, by (entity, id): a later copy is compared with it."""
    held: set[int] = set()
    """Addresses of the batch on walk lists the user holds now (write scope's common case)."""
    stored_events: set[tuple[str, str]] = set()
    """Events of the batch already stored (a replay from elsewhere, or a conflicting duplicate)."""
    questions: dict[int, list[dict[str, Any]]] = {}
    """Survey id -> its questions, for the surveys the batch's answers name (and active ones)."""
    active_surveys: list[int] = []
    attempt_rows: list[dict[str, Any]] = []
    answer_rows: list[dict[str, Any]] = []
    feed_rows: list[dict[str, Any]] = []
    now: datetime = msgspec.field(default_factory=_now)
    """When the push's events were received (one reading for the whole push)."""


def _build_prefetch(postgres: bool) -> Any:
    """Every question of ``_prefetch`` in one round trip: rows of (kind, id, erased entity's id,
    campaign, address)."""
    none_int, none_text = null().cast(Integer), null().cast(Text)

    def owned(kind: str, model: Any, name: str, address: Any = None) -> Any:
        return select(
            literal_column(f"'{kind}'"), model.id, none_text, model.campaign_id,
            none_int if address is None else address,
        ).where(_any_param(postgres, model.id, name))

    return union_all(
        select(Tombstone.entity, none_int, Tombstone.entity_id, none_int, none_int).where(
            _any_param(postgres, Tombstone.entity_id, "names")
        ),
        owned("address", Address, "addresses"),
        owned("person", Person, "people", Person.address_id),
        owned("walk_list", WalkList, "lists"),
        # surveys with their questions (as text), named by the answers or active in the campaign
        select(
            literal_column("'survey'"), Survey.id, cast(Survey.questions, Text), Survey.campaign_id,
            cast(Survey.is_active, Integer),
        ).where(
            Survey.status != "draft",  # a draft was never sent to a phone: an answer naming one names an unknown survey
            or_(
                _any_param(postgres, Survey.id, "surveys"),
                and_(Survey.campaign_id == bindparam("campaign_id"), Survey.is_active.is_(True),
                     bindparam("want_active", type_=Boolean)),
            )
        ),
        # write scope: the batch's addresses on lists the user holds now
        select(literal_column("'held'"), WalkListStop.address_id, none_text, none_int, none_int)
        .join(Assignment, Assignment.walk_list_id == WalkListStop.walk_list_id)
        .where(
            Assignment.user_id == bindparam("user_id"),
            Assignment.ended_at.is_(None),
            _any_param(postgres, WalkListStop.address_id, "held_addresses"),
        ),
        # events of the batch already stored
        select(literal_column("'stored_attempt'"), none_int, ContactAttempt.id, none_int, none_int).where(
            _any_param(postgres, ContactAttempt.id, "attempt_ids")
        ),
        select(literal_column("'stored_answer'"), none_int, Answer.id, none_int, none_int).where(
            _any_param(postgres, Answer.id, "answer_ids")
        ),
    )


def _build_prefetch_receipt(postgres: bool) -> Any:
    """``_build_prefetch`` plus the device's receipt: ('receipt', last_seq, ...), none if it has none."""
    receipt = select(
        literal_column("'receipt'"), DeviceReceipt.last_seq, null().cast(Text), null().cast(Integer),
        null().cast(Integer),
    ).where(DeviceReceipt.device_id == bindparam("device_id"))
    return union_all(*_build_prefetch(postgres).selects, receipt)


async def _prefetch(
    session: AsyncSession, context: PushContext, decoded: list[Decoded], *, with_receipt: bool = False
) -> tuple[PushCache, int]:
    """One round trip for every question about the plain events of the batch (see ``PushCache``);
    ``with_receipt`` (PostgreSQL) reads the device's receipt in it too: (cache, its last_seq)."""
    plain = [d for d in decoded if d.event_id is not None]
    events: list[RecordContactAttempt | RecordAnswer] = [d.mutation for d in plain]
    cache = PushCache(
        event_ids={"contact_attempt": set(), "answer": set()},
        tombstones=set(),
        addresses={},
        people={},
        walk_lists={},
        surveys={},
        held=set(),
        batch_events={},
        stored_events=set(),
        questions={},
        active_surveys=[],
        attempt_rows=[],
        answer_rows=[],
        feed_rows=[],
    )
    if not events and not with_receipt:
        return cache, 0
    ids = {"contact_attempt": [], "answer": []}  # type: dict[str, list[str]]
    for d in plain:
        ids[_EVENT_ENTITY[type(d.mutation)]].append(d.event_id)  # type: ignore[arg-type]
    address_ids = {e.address_id for e in events}
    person_ids = {e.person_id for e in events if e.person_id is not None}
    names = [*ids["contact_attempt"], *ids["answer"]]
    names += [str(i) for i in address_ids | person_ids]
    list_ids = {e.walk_list_id for e in events if e.walk_list_id is not None}
    survey_ids = {
        e.survey_id for e in events if isinstance(e, RecordAnswer) and e.survey_id is not None
    }
    query = _statement(session, "prefetch_receipt" if with_receipt else "prefetch",
                       _build_prefetch_receipt if with_receipt else _build_prefetch)
    want_active = any(isinstance(e, RecordAnswer) and e.survey_id is None for e in events)
    params = {
        "device_id": context.device_id,
        "names": names,
        "addresses": list(address_ids),
        "people": list(person_ids),
        "lists": list(list_ids),
        "surveys": list(survey_ids),
        "campaign_id": context.campaign_id,
        "want_active": want_active,
        "user_id": context.user_id,
        "held_addresses": list(address_ids) if context.scoped else [],
        "attempt_ids": ids["contact_attempt"],
        "answer_ids": ids["answer"],
    }
    tables = {"address": cache.addresses, "walk_list": cache.walk_lists, "survey": cache.surveys}
    last_seq = 0
    for kind, number, erased_id, campaign_id, address_id in await session.execute(query, params):
        if kind == "receipt":
            last_seq = number
        elif kind == "survey":
            cache.surveys[number] = campaign_id
            cache.questions[number] = msgspec.json.decode(erased_id) if erased_id else []
            if address_id and campaign_id == context.campaign_id:
                cache.active_surveys.append(number)
        elif kind == "held":
            cache.held.add(number)
        elif kind == "stored_attempt":
            cache.stored_events.add(("contact_attempt", erased_id))
        elif kind == "stored_answer":
            cache.stored_events.add(("answer", erased_id))
        elif erased_id is not None:
            cache.tombstones.add((kind, erased_id))
        elif kind == "person":
            cache.people[number] = (campaign_id, address_id)
        else:
            tables[kind][number] = campaign_id
    return cache, last_seq


def _check_plain_event(
    cache: PushCache, context: PushContext, event: RecordContactAttempt | RecordAnswer
) -> None:
    """Raise ``Rejected`` if the event names an address, person, list or survey it may not."""
    if cache.addresses.get(event.address_id) != context.campaign_id:
        if ("address", str(event.address_id)) in cache.tombstones:
            raise Rejected(f"erased: address {event.address_id} was erased")
        raise Rejected(f"unknown: address {event.address_id} is unknown")
    if event.person_id is not None:
        person = cache.people.get(event.person_id)
        if person is None or person[0] != context.campaign_id:
            if ("person", str(event.person_id)) in cache.tombstones:
                raise Rejected(f"erased: person {event.person_id} was erased")
            raise Rejected(f"unknown: person {event.person_id} is unknown")
        if person[1] != event.address_id:
            raise Rejected(
                f"invalid: person {event.person_id} is not registered at address {event.address_id}"
            )
    if (
        event.walk_list_id is not None
        and cache.walk_lists.get(event.walk_list_id) != context.campaign_id
    ):
        raise Rejected(f"unknown: walk list {event.walk_list_id} is unknown")
    if (
        isinstance(event, RecordAnswer)
        and event.survey_id is not None
        and cache.surveys.get(event.survey_id) != context.campaign_id
    ):
        raise Rejected(f"unknown: survey {event.survey_id} is unknown")


def _check_answer(cache: PushCache, event: RecordAnswer) -> None:
    """Contract G: the answer fits the survey version it names (else the campaign's active survey)."""
    ids = [event.survey_id] if event.survey_id is not None else cache.active_surveys
    questions = [q for survey_id in ids for q in cache.questions.get(survey_id, [])]
    try:
        validate_answer(questions, event.question_key, event.value)
    except AnswerRefused as exc:
        raise Rejected(exc.reason) from None


async def _apply_plain_event(
    session: AsyncSession,
    context: PushContext,
    event: RecordContactAttempt | RecordAnswer,
    event_id: str,
    stamp: HLC,
    untrusted: bool = False,
) -> tuple[str, str]:
    """A contact attempt or answer (``event_id``: its id as text; ``stamp``: its ``at``
    parsed), checked against the push's ``PushCache``.

    Nothing is written here: the row and its feed row are queued and inserted
    with the others at the end of the push (see ``apply_push``).
    """
    cache: PushCache = context.cache
    entity = _EVENT_ENTITY[type(event)]
    if (entity, event_id) in cache.tombstones:
        raise Rejected(f"erased: {entity} {event_id} was erased")
    earlier = cache.batch_events.get((entity, event_id))
    if earlier is not None:
        if msgspec.structs.replace(earlier, at=event.at) == event:
            return "duplicate", _DUPLICATE_EVENT
        return "conflict", (
            f"conflicting_duplicate: {entity} {event_id} came earlier in this push with other content; "
            "kept for review"
        )
    if (entity, event_id) in cache.stored_events:
        # Stored already (by this or another device): the same content is a duplicate even if
        # what it names has changed since; other content under that id is kept as a conflict.
        stored = await session.get(_EVENT_MODELS[type(event)], event_id)
        if stored is not None:
            if _same_event(stored, event):
                return "duplicate", _DUPLICATE_EVENT
            return "conflict", (
                f"conflicting_duplicate: {entity} {event_id} is already stored with other content; "
                "kept for review"
            )
    _check_plain_event(cache, context, event)
    await _check_scope(session, context, event.address_id, _work_time(stamp, untrusted))
    if isinstance(event, RecordAnswer):
        _check_answer(cache, event)
    common: dict[str, Any] = {
        "id": event_id,
        "campaign_id": context.campaign_id,
        "address_id": event.address_id,
        "person_id": event.person_id,
        "hlc": event.at,
        "user_id": context.user_id,
        "device_id": context.device_id,
        "walk_list_id": event.walk_list_id,
    }
    common["time_untrusted"] = untrusted
    if isinstance(event, RecordContactAttempt):
        common["outcome"] = event.outcome
        common["at"] = datetime.fromtimestamp(stamp.wall_ms / 1000, UTC)
        common["received_at"] = cache.now
        cache.attempt_rows.append(common)
    else:
        common["survey_id"] = event.survey_id
        common["question_key"] = event.question_key
        common["value"] = event.value
        common["received_at"] = cache.now
        cache.answer_rows.append(common)
    cache.event_ids[entity].add(event_id)
    cache.batch_events[(entity, event_id)] = event
    cache.feed_rows.append(
        {
            "campaign_id": context.campaign_id,
            "entity": entity,
            "entity_id": event_id,
            "op": "upsert",
            "walk_list_id": None,
            "address_id": event.address_id,
        }
    )
    return "applied", ""


def _same_event(stored: Any, event: EventMutation) -> bool:
    """Whether a stored event row holds what ``event`` says: same id and content, the stamp aside
    (the same event relayed by another device carries that device's stamp)."""
    same = stored.address_id == event.address_id and stored.person_id == event.person_id
    if isinstance(event, RecordContactAttempt):
        return same and stored.outcome == event.outcome and stored.walk_list_id == event.walk_list_id
    if isinstance(event, RecordAnswer):
        return same and stored.question_key == event.question_key and stored.value == event.value and (
            type(stored.value) is type(event.value)
        )
    return same and stored.kind == event.kind and (stored.note or "") == event.note


_EVENT_MODELS: dict[type, Any] = {RecordContactAttempt: ContactAttempt, RecordAnswer: Answer}
_EVENT_ENTITY = {RecordContactAttempt: "contact_attempt", RecordAnswer: "answer"}


async def _apply_observation(
    session: AsyncSession, context: PushContext, event: RecordObservation, untrusted: bool = False
) -> tuple[str, str]:
    """An observation, one at a time: it locks its address and folds into the flags at once.

    (Contact attempts and answers, the bulk of a push, go through ``_apply_plain_event``.)
    """
    event_id = str(event.id)
    if await is_erased(session, "observation", event_id):
        raise Rejected(f"erased: observation {event_id} was erased")
    stored = await session.get(Observation, event_id)
    if stored is not None:
        if _same_event(stored, event):
            return "duplicate", _DUPLICATE_EVENT
        return "conflict", f"conflicting_duplicate: observation {event_id} is already stored with other content"
    # people before addresses: the order erasure locks them in (no deadlock)
    await _check_person(session, context, event.person_id, event.address_id)
    await _check_address(session, context, event.address_id, lock=True)
    await _check_scope(session, context, event.address_id, _work_time(parse(event.at), untrusted))
    if event.kind == "do_not_visit_cleared" and context.role not in (Role.admin, Role.organiser):
        raise Rejected("not_allowed: only an organiser may clear do-not-visit")
    session.add(
        Observation(
            id=event_id,
            campaign_id=context.campaign_id,
            address_id=event.address_id,
            person_id=event.person_id,
            hlc=event.at,
            user_id=context.user_id,
            device_id=context.device_id,
            kind=event.kind,
            note=event.note,
            time_untrusted=untrusted,
        )
    )
    await session.flush()
    await record_change(
        session,
        campaign_id=context.campaign_id,
        entity="observation",
        entity_id=event_id,
        address_id=event.address_id,
    )
    await _update_flags(session, context, event)
    return "applied", ""


async def _update_flags(
    session: AsyncSession, context: PushContext, observation: RecordObservation
) -> None:
    """Fold an accepted observation into the key's Flag rows (``sync.merge.apply_observation``)."""
    person_key = observation.person_id or 0
    rows = {
        row.kind: row
        for row in await session.scalars(
            select(Flag).where(
                Flag.address_id == observation.address_id, Flag.person_key == person_key
            )
        )
    }
    dnv = rows.get("do_not_visit")
    before = FlagState(
        address_id=observation.address_id,
        person_id=observation.person_id,
        do_not_visit=bool(dnv and dnv.active),
        moved_away="moved_away" in rows,
        deceased="deceased" in rows,
        set_hlc=dnv.set_hlc if dnv and dnv.active else "",
        cleared_hlc=(dnv.cleared_hlc or "") if dnv else "",
    )
    after = apply_observation(before, observation)
    if observation.kind in ("do_not_visit", "do_not_visit_cleared"):
        if dnv is None:
            if after.do_not_visit:
                session.add(
                    Flag(
                        campaign_id=context.campaign_id,
                        address_id=observation.address_id,
                        person_key=person_key,
                        kind="do_not_visit",
                        active=True,
                        set_hlc=after.set_hlc,
                        cleared_hlc=after.cleared_hlc or None,
                    )
                )
        else:
            dnv.active = after.do_not_visit
            if after.do_not_visit:
                dnv.set_hlc = after.set_hlc
            dnv.cleared_hlc = after.cleared_hlc or None
    for kind in ("moved_away", "deceased"):
        if getattr(after, kind) and kind not in rows:
            session.add(
                Flag(
                    campaign_id=context.campaign_id,
                    address_id=observation.address_id,
                    person_key=person_key,
                    kind=kind,
                    active=True,
                    set_hlc=observation.at,
                )
            )
        elif kind == observation.kind and kind in rows and observation.at > rows[kind].set_hlc:
            rows[kind].set_hlc = observation.at
    await session.flush()
    await record_change(
        session,
        campaign_id=context.campaign_id,
        entity="flag",
        entity_id=flag_key(observation.address_id, observation.person_id),
        address_id=observation.address_id,
    )


async def _apply_edit(
    session: AsyncSession, context: PushContext, edit: EditField
) -> tuple[str, str]:
    """Last writer wins per field by HLC; the loser of concurrent edits becomes a Conflict row.

    The server sees edits in causal order (a phone can only base an edit on a
    version it pulled, or on its own earlier edit, which it pushed first), so
    the field's merge state is: the winner (column value + ``FieldVersion``)
    and the open conflicts (the other tips). ``sync.merge.merge_field_edit``
    decides; this function persists its verdict.
    """
    if edit.field not in EDITABLE_FIELDS[edit.entity]:
        raise Rejected(f"unsupported: {edit.entity}.{edit.field} is not editable from a phone")
    model: Any = Person if edit.entity == "person" else Address
    row = await session.scalar(select(model).where(model.id == edit.entity_id).with_for_update())
    if row is None or row.campaign_id != context.campaign_id:
        if await is_erased(session, edit.entity, edit.entity_id):
            raise Rejected(f"erased: {edit.entity} {edit.entity_id} was erased")
        raise Rejected(f"unknown: {edit.entity} {edit.entity_id} is unknown")
    await _check_scope(
        session, context, row.id if edit.entity == "address" else row.address_id, _work_time(parse(edit.hlc), False)
    )
    version = await session.get(FieldVersion, (edit.entity, edit.entity_id, edit.field))
    open_conflicts = list(
        await session.scalars(
            select(Conflict).where(
                Conflict.entity == edit.entity,
                Conflict.entity_id == edit.entity_id,
                Conflict.field == edit.field,
                Conflict.resolved_at.is_(None),
            )
        )
    )
    state: FieldState | None = None
    if version is not None:
        winner = EditField(
            entity=edit.entity,
            entity_id=edit.entity_id,
            field=edit.field,
            value=getattr(row, edit.field),
            hlc=version.hlc,
        )
        tips = [winner] + [
            EditField(
                entity=edit.entity,
                entity_id=edit.entity_id,
                field=edit.field,
                value=c.losing_value,
                hlc=c.losing_hlc,
            )
            for c in open_conflicts
        ]
        state = FieldState(winner=winner, tips=tuple(sorted(tips, key=lambda t: t.hlc)), bases=())
    result = merge_field_edit(state, edit)
    previous_device = version.device_id if version is not None else None
    if result.outcome == "duplicate":
        return "duplicate", "edit already merged"
    if result.outcome == "applied":
        setattr(row, edit.field, edit.value)
        if edit.entity == "person" and edit.field == "contact_consent":
            row.consent_at = _now()
        if version is None:
            session.add(
                FieldVersion(
                    entity=edit.entity,
                    entity_id=edit.entity_id,
                    field=edit.field,
                    hlc=edit.hlc,
                    device_id=context.device_id,
                )
            )
        else:
            version.hlc = edit.hlc
            version.device_id = context.device_id
    if result.conflict is not None:
        loser = result.conflict
        losing_device = context.device_id if loser.hlc == edit.hlc else previous_device
        session.add(
            Conflict(
                campaign_id=context.campaign_id,
                entity=loser.entity,
                entity_id=loser.entity_id,
                field=loser.field,
                losing_value=loser.value,
                losing_hlc=loser.hlc,
                losing_device_id=losing_device,
                winning_value=loser.winner_value,
                winning_hlc=loser.winner_hlc,
            )
        )
    if result.resolved is not None:
        for conflict in open_conflicts:
            if conflict.losing_hlc == result.resolved.hlc:
                conflict.resolved_at = _now()
    await session.flush()
    address_id = row.id if edit.entity == "address" else row.address_id
    await record_change(
        session,
        campaign_id=context.campaign_id,
        entity=edit.entity,
        entity_id=edit.entity_id,
        address_id=address_id,
    )
    if result.outcome == "applied":
        return "applied", ""
    if result.outcome == "conflict":
        return "conflict", f"a concurrent edit ({result.new_state.hlc}) won; kept for review"
    return "duplicate", "superseded by a later edit based on it"


async def _apply_request(
    session: AsyncSession, context: PushContext, request: ServerRequest
) -> tuple[str, str]:
    """Server-authoritative requests; each may be refused (``rejected`` with a reason)."""
    if request.name == "release_walk_list":
        list_id = request.args.get("walk_list_id")
        if not isinstance(list_id, int):
            raise Rejected("invalid: release_walk_list needs an integer walk_list_id")
        assignment = await session.scalar(
            select(Assignment)
            .join(WalkList, WalkList.id == Assignment.walk_list_id)
            .where(
                Assignment.walk_list_id == list_id,
                Assignment.user_id == context.user_id,
                Assignment.ended_at.is_(None),
                WalkList.campaign_id == context.campaign_id,
            )
        )
        if assignment is None:
            raise Rejected(f"not_allowed: walk list {list_id} is not assigned to you")
        assignment.ended_at = _now()
        await session.flush()
        return "applied", ""
    raise Rejected(f"unsupported: server request {request.name!r}")


async def push_context_for(
    session: AsyncSession, device_id: int, user_id: int, role: Role | None, max_skew_ms: int
) -> PushContext:
    """Build the push context from the device row (the server-held truth, not the request body)."""
    device = await session.get(Device, device_id)
    if device is None:
        raise Rejected("unknown device")
    return PushContext(
        device_id=device.id,
        node_id=device.node_id,
        user_id=user_id,
        campaign_id=device.campaign_id,
        role=role,
        max_skew_ms=max_skew_ms,
    )


async def organiser_device(
    session: AsyncSession, user_id: int, campaign_id: int, name: str
) -> Device:
    """The device an organiser's server-side writes (paper sheets, conflict resolutions) push through.

    One per user, campaign and purpose, so receipts, rejections and audit work as for phones.
    """
    device = await session.scalar(
        select(Device).where(
            Device.user_id == user_id,
            Device.campaign_id == campaign_id,
            Device.name == name,
            Device.revoked_at.is_(None),
        )
    )
    if device is None:
        device = Device(
            user_id=user_id,
            campaign_id=campaign_id,
            name=name,
            node_id=f"{name.split()[0]}-{uuid.uuid4().hex[:12]}",
        )
        session.add(device)
        await session.flush()
    return device


def new_event_id() -> uuid.UUID:
    """A fresh event id (server-made events use the same UUID space as phones)."""
    return uuid.uuid4()


Applier = Callable[[AsyncSession, PushContext, Any, bool], Awaitable[tuple[str, str]]]

async def _apply_void(session: AsyncSession, context: PushContext, mutation: Any, untrusted: bool) -> tuple[str, str]:
    """Undo of a sent record: its own module (imported here, as it imports this one)."""
    from server.sync.voids import apply_void

    return await apply_void(session, context, mutation, untrusted)


APPLIERS: dict[type, Applier] = {
    EditField: lambda session, context, mutation, untrusted: _apply_edit(session, context, mutation),
    ServerRequest: lambda session, context, mutation, untrusted: _apply_request(session, context, mutation),
    RecordObservation: _apply_observation,
    VoidEvent: _apply_void,
}
"""Push dispatch: mutation type -> its applier ``(session, context, mutation, untrusted) ->
(status, reason)``, run in a savepoint; raise ``Rejected`` to refuse. A new op is one entry here
(and one in ``TARGETS``). Contact attempts and answers are not here: they are checked in bulk
(``_apply_plain_event``) and written with the push's other rows at the end."""

TARGETS: dict[type, Callable[[Any], tuple[str, str]]] = {
    EditField: lambda m: (m.entity, str(m.entity_id)),
    RecordContactAttempt: lambda m: ("contact_attempt", str(m.id)),
    RecordAnswer: lambda m: ("answer", str(m.id)),
    RecordObservation: lambda m: ("observation", str(m.id)),
}
"""Mutation type -> the (entity, id) its receipt and kept payload name."""

_FINISHERS: dict[str, Any] = {"postgresql": _finish_push_pg, "sqlite": _finish_push}
"""The writer of a push's queued rows, one per database (chosen once per push by dialect)."""
