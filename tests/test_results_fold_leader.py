"""One fold across all app instances (issue 18): the background fold runs on one instance at a time.

Two fold tasks on two engines stand for two `canvass serve` processes on one
PostgreSQL. While both run, only one of them ever folds (the one holding the
leader lock); when it stops, the other takes over. SQLite has no background
fold (every reader folds nothing: the triggers keep its tallies).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import text

from server.db.session import create_engine_for, create_sessionmaker
from server.results.tallies import FOLD_LEADER_LOCK, fold_periodically


async def wait_until(predicate: Callable[[], bool], limit_s: float = 20.0) -> None:
    """Poll until the predicate holds (a generous bound, not a timing assertion)."""
    for _ in range(int(limit_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


async def test_two_instances_never_fold_in_parallel(db_url: str) -> None:
    """Only the leader folds while both run; after it stops the other one folds; never both in one pass."""
    if not db_url.startswith("postgresql"):
        # SQLite has no background fold: the task ends by itself at its first interval, folding nothing
        engine = create_engine_for(db_url)
        folded: list[int] = []
        try:
            await asyncio.wait_for(fold_periodically(create_sessionmaker(engine), 0.02, folded.append), timeout=20)
        finally:
            await engine.dispose()
        assert folded == []
        return
    engines = [create_engine_for(db_url), create_engine_for(db_url)]
    passes: list[list[int]] = [[], []]
    tasks = []
    try:
        def recorder(n: int) -> Callable[[int], None]:
            def on_pass(folded: int) -> None:
                passes[n].append(folded)
            return on_pass

        for n, engine in enumerate(engines):
            tasks.append(asyncio.create_task(fold_periodically(create_sessionmaker(engine), 0.02, recorder(n))))
        await wait_until(lambda: len(passes[0]) + len(passes[1]) >= 20)
        # the lock is held by exactly one session the whole time
        async with engines[0].connect() as conn:
            holders = await conn.scalar(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                     "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                     "AND ((classid::bigint << 32) | objid::bigint) = :k"),
                {"k": FOLD_LEADER_LOCK},
            )
        assert holders == 1
        leader = 0 if passes[0] else 1
        assert passes[1 - leader] == [], "both instances folded"
        # the leader goes away: the other takes over
        tasks[leader].cancel()
        await asyncio.gather(tasks[leader], return_exceptions=True)
        await wait_until(lambda: len(passes[1 - leader]) >= 3)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for engine in engines:
            await engine.dispose()
