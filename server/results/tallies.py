"""The result tallies: folding queued contact attempts in, rebuilding from the events.

The tallies (``result_door_tally``, ``result_group_tally``, ``result_hour_tally``,
``result_answer_cells``) let the dashboard read thousands of rows, not millions.

* SQLite: row triggers of migration 0003 keep them right in the writer's
  transaction (writers are serialised there anyway).
* PostgreSQL (migrations 0005, 0007): an inserted attempt only queues its id and
  the columns the tallies read in ``result_pending``; :func:`fold_result_tallies`
  takes the queue in, set-based, in one statement, under an advisory lock. Why: updating the campaign's and the hour's tally
  rows in every push made all pushes of a campaign wait for each other on
  those row locks. Every reader of the attempt tallies folds first, so a
  figure is never behind a committed push; a background task folds every few
  seconds so the queue stays short. Deleting or updating an attempt takes
  back what was folded (row trigger, same advisory lock).

Answer cells keep their statement-level triggers on both databases.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from server.db.dialect import is_postgres

OUTCOMES = ("spoke", "not_home", "refused", "moved", "deceased", "inaccessible", "come_back", "do_not_visit", "wrong_address")
CONTACT_OUTCOMES = frozenset({"spoke", "refused"})
RESULT_TALLIES = ("result_door_tally", "result_group_tally", "result_hour_tally", "result_answer_cells")
SUM_COLUMNS = ["attempts", *[f"n_{o}" for o in OUTCOMES], "n_other"]
DOOR_COLUMNS = ["attempts", "contacts", *[f"n_{o}" for o in OUTCOMES], "n_other"]
FOLD_LOCK = 0x43414E56
"""PostgreSQL advisory lock key of the fold (the same constant is frozen in migration 0005)."""

_CONTACT = "('spoke', 'refused')"
_KNOWN = "(" + ", ".join(f"'{o}'" for o in OUTCOMES) + ")"
_DOOR_SUMS = ", ".join(
    ["count(*)", f"sum(CASE WHEN outcome IN {_CONTACT} THEN 1 ELSE 0 END)"]
    + [f"sum(CASE WHEN outcome = '{o}' THEN 1 ELSE 0 END)" for o in OUTCOMES]
    + [f"sum(CASE WHEN outcome NOT IN {_KNOWN} THEN 1 ELSE 0 END)"]
)
"""Door-tally figures (DOOR_COLUMNS order) of a group of contact-attempt rows."""

# (kind, key expression over an attempt row r, condition tying a door-tally row d to that key)
_SCOPES = (
    ("campaign", "0", ""),
    ("list", "coalesce(r.walk_list_id, 0)", " AND d.walk_list_id = x.k"),
    ("user", "coalesce(r.user_id, 0)", " AND d.user_id = x.k"),
)

log = logging.getLogger("canvass.results")


def hour_expression(pg: bool, alias: str = "r") -> str:
    """SQL for an attempt's UTC hour since the epoch (its time, else when the server received it)."""
    if pg:
        return f"floor(extract(epoch from coalesce({alias}.at, {alias}.received_at)) / 3600)::int"
    return f"(CAST(strftime('%s', coalesce({alias}.at, {alias}.received_at)) AS INTEGER) / 3600)"


def _upsert(key: list[str], columns: list[str]) -> str:
    return (
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
        + ", ".join(f"{c} = t.{c} + excluded.{c}" for c in columns)
    )


_BATCH = "SELECT * FROM taken"
"""The attempts a fold takes in: the queue rows it deletes (they carry the attempts' columns)."""


def _fold_statement() -> str:
    """The fold as one statement: the queue emptied (``taken``) feeding every tally upsert as a
    data-modifying CTE. All parts see one snapshot, which is what the group tallies need: they
    ask whether a door was already knocked in the scope, so they must read the door tally as it
    was *before* it takes this batch in. One round trip, and each attempt is read once."""
    out = []
    group_columns = ["knocked", "contacted", *SUM_COLUMNS]
    per_door = ", ".join(f"sum({c}) AS {c}" for c in SUM_COLUMNS)
    row_flags = ", ".join(
        ["1 AS attempts"]
        + [f"CASE WHEN r.outcome = '{o}' THEN 1 ELSE 0 END AS n_{o}" for o in OUTCOMES]
        + [f"CASE WHEN r.outcome NOT IN {_KNOWN} THEN 1 ELSE 0 END AS n_other"]
    )
    for kind, key, tie in _SCOPES:
        door = "SELECT 1 FROM result_door_tally d WHERE d.campaign_id = x.campaign_id AND d.address_id = x.address_id" + tie
        out.append(
            f"INSERT INTO result_group_tally AS t (campaign_id, kind, key, {', '.join(group_columns)}) "
            f"SELECT campaign_id, '{kind}', k, sum(knocked), sum(contacted), {', '.join(f'sum({c})' for c in SUM_COLUMNS)} FROM ("
            f"SELECT x.campaign_id, x.k, CASE WHEN EXISTS ({door}) THEN 0 ELSE 1 END AS knocked, "
            f"CASE WHEN x.contact = 1 AND NOT EXISTS ({door} AND d.contacts > 0) THEN 1 ELSE 0 END AS contacted, "
            f"{', '.join(f'x.{c}' for c in SUM_COLUMNS)} FROM ("
            f"SELECT r.campaign_id, {key} AS k, r.address_id, max(CASE WHEN r.outcome IN {_CONTACT} THEN 1 ELSE 0 END) AS contact, "
            f"{per_door} FROM (SELECT r.*, {row_flags} FROM ({_BATCH}) r) r "
            "GROUP BY 1, 2, 3) x) y "
            f"GROUP BY campaign_id, k {_upsert(['campaign_id', 'kind', 'key'], group_columns)}"
        )
    out.append(
        f"INSERT INTO result_door_tally AS t (campaign_id, address_id, walk_list_id, user_id, {', '.join(DOOR_COLUMNS)}) "
        f"SELECT campaign_id, address_id, coalesce(walk_list_id, 0), coalesce(user_id, 0), {_DOOR_SUMS} FROM ({_BATCH}) r "
        "GROUP BY campaign_id, address_id, coalesce(walk_list_id, 0), coalesce(user_id, 0) "
        + _upsert(["campaign_id", "address_id", "walk_list_id", "user_id"], DOOR_COLUMNS)
    )
    out.append(
        "INSERT INTO result_hour_tally AS t (campaign_id, hour, attempts, contacts) "
        f"SELECT campaign_id, {hour_expression(True)}, count(*), sum(CASE WHEN outcome IN {_CONTACT} THEN 1 ELSE 0 END) "
        f"FROM ({_BATCH}) r GROUP BY campaign_id, {hour_expression(True)} "
        + _upsert(["campaign_id", "hour"], ["attempts", "contacts"])
    )
    parts = ", ".join(f"fold_{n} AS ({statement})" for n, statement in enumerate(out))
    return f"WITH taken AS (DELETE FROM result_pending RETURNING *), {parts} SELECT count(*) FROM taken"


_FOLD = _fold_statement()


async def fold_result_tallies(session: AsyncSession, *, wait: bool = True) -> int:
    """Fold every queued attempt committed so far into the tallies; returns how many (0 on SQLite).

    Runs in the caller's transaction and holds the fold lock until it ends, so
    folds never overlap and a delete or update of an attempt (whose trigger
    takes the same lock) never races one. ``wait=False`` returns 0 at once if
    another transaction is folding (the background task: someone is on it).
    """
    if not is_postgres(session):
        return 0
    if wait:
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FOLD_LOCK})
    elif not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": FOLD_LOCK}):
        return 0
    return int(await session.scalar(text(_FOLD)) or 0)


FOLD_LEADER_LOCK = 0x43414E564C454144
"""PostgreSQL advisory lock key ("CANVLEAD") held by the one app instance whose background task folds."""


async def fold_periodically(
    sessionmaker: async_sessionmaker[AsyncSession], interval_s: float, on_pass: Callable[[int], None] | None = None
) -> None:
    """Background task (PostgreSQL): fold the queue every ``interval_s`` seconds until cancelled, on one instance only.

    Every `canvass serve` process runs this task, but only the one holding the
    leader lock (a session-level ``pg_try_advisory_lock`` on a connection of its
    own, kept between passes) folds: once per interval across all instances,
    never two passes in parallel. The others try for the lock each interval, so
    when the leader stops or is killed (PostgreSQL releases the lock with its
    connection) another takes over within an interval. Readers still fold
    before reading (``fold_result_tallies``), so no figure waits for the leader.
    ``on_pass`` is called with the count folded after each pass this instance ran.
    """
    engine = sessionmaker.kw["bind"]
    leader: AsyncConnection | None = None

    async def step_down() -> None:
        nonlocal leader
        if leader is not None:
            conn, leader = leader, None
            with suppress(Exception):
                await conn.invalidate()  # drop the connection (and its lock) rather than pool it still locked
            with suppress(Exception):
                await conn.close()

    try:
        while True:
            await asyncio.sleep(interval_s)
            try:
                if leader is None:
                    conn = await engine.connect()
                    if not is_postgres(conn):
                        await conn.close()
                        return
                    took = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": FOLD_LEADER_LOCK})
                    await conn.commit()
                    if not took:
                        await conn.close()
                        continue
                    leader = conn
                    log.info("this instance now folds the result tallies")
                else:  # still holding it? (a lost connection lost the lock too)
                    await leader.scalar(text("SELECT 1"))
                    await leader.commit()
                async with sessionmaker() as session:
                    folded = await fold_result_tallies(session, wait=False)
                    await session.commit()
                if on_pass is not None:
                    on_pass(folded)
                if folded:
                    log.debug("folded %d contact attempts into the result tallies", folded)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep trying after a transient database error; readers fold anyway
                log.exception("background fold of the result tallies failed")
                await step_down()
    finally:
        await asyncio.shield(step_down())


async def rebuild_result_tallies(session: AsyncSession, campaign_id: int) -> dict[str, int]:
    """Recompute one campaign's tallies from its events (repair, or after addresses change area); returns row counts."""
    pg = is_postgres(session)
    collate = ' COLLATE "C"' if pg else ""
    params: dict[str, Any] = {"c": campaign_id}
    if pg:  # the rebuild takes in everything queued: dequeue it under the fold lock
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FOLD_LOCK})
        await session.execute(text("DELETE FROM result_pending WHERE campaign_id = :c"), params)
    for table in RESULT_TALLIES:
        await session.execute(text(f"DELETE FROM {table} WHERE campaign_id = :c"), params)
    await session.execute(text(
        f"INSERT INTO result_door_tally (campaign_id, address_id, walk_list_id, user_id, {', '.join(DOOR_COLUMNS)}) "
        f"SELECT campaign_id, address_id, coalesce(walk_list_id, 0), coalesce(user_id, 0), {_DOOR_SUMS} FROM contact_attempts "
        "WHERE campaign_id = :c GROUP BY campaign_id, address_id, coalesce(walk_list_id, 0), coalesce(user_id, 0)"), params)
    for kind, key in (("campaign", "0"), ("list", "walk_list_id"), ("user", "user_id")):
        await session.execute(text(
            f"INSERT INTO result_group_tally (campaign_id, kind, key, knocked, contacted, {', '.join(SUM_COLUMNS)}) "
            f"SELECT campaign_id, '{kind}', k, count(*), sum(c), {', '.join(f'sum({c})' for c in SUM_COLUMNS)} FROM ("
            f"SELECT campaign_id, {key} AS k, address_id, max(CASE WHEN contacts > 0 THEN 1 ELSE 0 END) AS c, "
            f"{', '.join(f'sum({c}) AS {c}' for c in SUM_COLUMNS)} FROM result_door_tally WHERE campaign_id = :c "
            "GROUP BY campaign_id, k, address_id) x GROUP BY campaign_id, k"), params)
    await session.execute(text(
        "INSERT INTO result_hour_tally (campaign_id, hour, attempts, contacts) "
        f"SELECT campaign_id, h, count(*), sum(c) FROM (SELECT campaign_id, {hour_expression(pg)} AS h, "
        f"CASE WHEN outcome IN {_CONTACT} THEN 1 ELSE 0 END AS c FROM contact_attempts r "
        "WHERE campaign_id = :c) x GROUP BY campaign_id, h"), params)
    await session.execute(text(
        "INSERT INTO result_answer_cells (campaign_id, area_code, walk_list_id, question_key, value, n) "
        "SELECT campaign_id, area, wl, question_key, v, count(*) FROM ("
        "SELECT a.campaign_id, coalesce(ad.area_code, '') AS area, coalesce(a.walk_list_id, 0) AS wl, a.question_key, "
        "substr(CAST(a.value AS TEXT), 1, 200) AS v, row_number() OVER (PARTITION BY a.question_key, "
        "coalesce(a.person_id, 0), CASE WHEN a.person_id IS NULL THEN a.address_id ELSE 0 END "
        f"ORDER BY a.hlc{collate} DESC, a.id{collate} DESC) AS rn FROM answers a LEFT JOIN addresses ad ON ad.id = a.address_id "
        "WHERE a.campaign_id = :c) x WHERE rn = 1 GROUP BY campaign_id, area, wl, question_key, v"), params)
    counts = {}
    for table in RESULT_TALLIES:
        counts[table] = int(await session.scalar(text(f"SELECT count(*) FROM {table} WHERE campaign_id = :c"), params) or 0)
    return counts
