"""Change rows: the one writer of ``change_feed`` (single and bulk) and the stamps a pull reads.

A change row holds ids only (the record is read when a device pulls; see
``server.sync.pull``). Every write phones must see appends one in the writer's
transaction, through this module:

* ``record_change``: one row;
* ``record_changes``: many rows in one round trip per chunk (retention, erasure, stop rewrites);
* ``FEED_INSERT_SQL``: the same insert as SQL, for the push's one-statement write on
  PostgreSQL (``server.sync.store``), which cannot call Python between its CTEs.

Stamps (what makes a pull complete, see ``server.sync.pull``):

* PostgreSQL: ``txid`` is the writer's transaction id (``pg_current_xact_id()``), ``version`` 0;
* SQLite: ``txid`` = ``version`` = a counter (``sync_counter``) bumped once per call. Every
  write transaction begins with ``BEGIN IMMEDIATE``, so counter order is commit order, and rows
  sharing a value are one call's, which the cursor handles as one transaction's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.dialect import is_postgres
from server.db.models import ChangeFeed, SyncCounter

COUNTER_NAME = "change_feed"
CHUNK = 2000

_PG_TXID = "CAST(CAST(pg_current_xact_id() AS text) AS bigint)"

FEED_INSERT_SQL = (
    "INSERT INTO change_feed (campaign_id, entity, entity_id, op, walk_list_id, address_id, txid, version, "
    f"created_at)\n    SELECT {{campaign_id}}, {{entity}}, {{entity_id}}, {{op}}, {{walk_list_id}}, {{address_id}}, "
    f"{_PG_TXID}, 0, {{now}}"
)
"""PostgreSQL: the head of an ``INSERT ... SELECT`` of change rows stamped as ``record_change``
stamps them; format it with the SQL expression of each column and append the ``FROM``."""


def change_row(
    campaign_id: int,
    entity: str,
    entity_id: int | str,
    op: str = "upsert",
    walk_list_id: int | None = None,
    address_id: int | None = None,
) -> dict[str, Any]:
    """One change row's columns (before its stamps)."""
    return {
        "campaign_id": campaign_id,
        "entity": entity,
        "entity_id": str(entity_id),
        "op": op,
        "walk_list_id": walk_list_id,
        "address_id": address_id,
    }


async def _next_sqlite_version(session: AsyncSession, count: int = 1) -> int:
    """SQLite: move the counter by ``count``; returns the new value."""
    await session.execute(
        sqlite_insert(SyncCounter).values(name=COUNTER_NAME, value=0).on_conflict_do_nothing()
    )
    value = await session.scalar(
        update(SyncCounter)
        .where(SyncCounter.name == COUNTER_NAME)
        .values(value=SyncCounter.value + count)
        .returning(SyncCounter.value)
    )
    assert value is not None
    return int(value)


async def record_change(
    session: AsyncSession,
    *,
    campaign_id: int,
    entity: str,
    entity_id: int | str,
    op: str = "upsert",
    walk_list_id: int | None = None,
    address_id: int | None = None,
) -> None:
    """Append a change row in the caller's transaction (call it for every write phones must see).

    ``walk_list_id`` / ``address_id`` say whose scope the change belongs to:
    a device sees it when the list is assigned to its user or the address is
    on one of its lists (``erase`` rows reach every device). ``op`` is ``upsert`` or ``erase``.
    """
    await record_changes(session, [change_row(campaign_id, entity, entity_id, op, walk_list_id, address_id)])


async def record_changes(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Append many change rows (``change_row`` dicts) in the caller's transaction, one stamp for
    them all (see the module docstring) and one round trip per ``CHUNK`` rows."""
    if not rows:
        return
    if is_postgres(session):
        if len(rows) == 1:  # the common case: one statement, the stamp computed in it
            await session.execute(
                insert(ChangeFeed).values(**rows[0], txid=text(_PG_TXID), version=0)
            )
            return
        txid = int(await session.scalar(text(f"SELECT {_PG_TXID}")) or 0)
        version = 0
    else:
        txid = version = await _next_sqlite_version(session)
    now = datetime.now(UTC)
    stamped = [{**row, "txid": txid, "version": version, "created_at": now} for row in rows]
    for chunk in _chunks(stamped, CHUNK):
        await session.execute(insert(ChangeFeed.__table__), chunk)


def _chunks(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# ------------------------------------------------------------------ stamps a pull reads


async def snapshot_horizon(session: AsyncSession) -> int:
    """Every transaction id below this had finished when it was taken (SQLite: next counter value)."""
    if is_postgres(session):
        value = await session.scalar(
            text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        )
        return int(value)
    value = await session.scalar(select(func.max(ChangeFeed.txid)))
    return int(value or 0) + 1


async def read_version(session: AsyncSession) -> str:
    """A version for records read from now on: never smaller than any earlier read's."""
    if is_postgres(session):
        value = await session.scalar(
            text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        )
    else:
        value = await session.scalar(select(func.max(ChangeFeed.txid)))
    return f"{int(value or 0):019d}"


__all__ = [
    "COUNTER_NAME",
    "FEED_INSERT_SQL",
    "change_row",
    "read_version",
    "record_change",
    "record_changes",
    "snapshot_horizon",
]
