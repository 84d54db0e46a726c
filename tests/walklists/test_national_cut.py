"""National cut: many partitions on a Dask LocalCluster give the same lists as the in-process cut of the same partitions."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import WalkList, WalkListStop
from server.walklists.national import dask_client, gather_partitions, national_cut
from server.walklists.schemas import CutRequest
from tests.test_walklists_api import Demo, demo, make_target  # noqa: F401  (demo is a fixture)


async def lists_of(sessionmaker: async_sessionmaker[AsyncSession], target_ids: list[int]) -> list[tuple[Any, ...]]:
    """Every list of the targets as (target, name, doors, routing, its address ids), sorted.

    The doors of a list, not their walking order: the route's local search is time-boxed
    (geo/routing.py), so even two in-process runs may walk a list in another, equally good order."""
    async with sessionmaker() as session:
        lists = (await session.scalars(select(WalkList).where(WalkList.target_id.in_(target_ids)))).all()
        stops = (await session.execute(
            select(WalkListStop.walk_list_id, WalkListStop.address_id).where(WalkListStop.walk_list_id.in_([w.id for w in lists]))
            .order_by(WalkListStop.walk_list_id, WalkListStop.position)
        )).all()
    doors: dict[int, list[int]] = {}
    for walk_list_id, address_id in stops:
        doors.setdefault(walk_list_id, []).append(address_id)
    return sorted((w.target_id, w.name, w.doors, w.routing, tuple(sorted(doors[w.id]))) for w in lists)


async def test_dask_cut_equals_in_process_cut(
    client: AsyncTestClient[Litestar], demo: Demo, sessionmaker: async_sessionmaker[AsyncSession], settings: Any,  # noqa: F811
) -> None:
    """Two targets split by census area: the same lists in process and on two Dask workers; none crosses an area's edge."""
    whole = await make_target(client, demo, sessionmaker, share=1.0)
    corner = await make_target(client, demo, sessionmaker, share=0.4)
    targets = [whole, corner]
    async with sessionmaker() as session:
        partitions = await gather_partitions(session, demo.campaign_id, targets, by="OA")
    assert len({p.key.split(":")[1] for p in partitions}) > 3, "the town should span several areas: the test would be vacuous"

    seen: list[tuple[int, int, int]] = []
    local = await national_cut(sessionmaker, demo.campaign_id, targets, CutRequest(size=20), by="OA",
                               progress=lambda done, total, doors: seen.append((done, total, doors)))
    assert not local.failed, local.failed
    in_process = await lists_of(sessionmaker, targets)
    assert seen[-1] == (len(partitions), len(partitions), sum(w.doors for w in local.lists))

    async with dask_client(settings, workers=2) as dask:
        assert len((await dask.scheduler.identity())["workers"]) == 2
        distributed = await national_cut(sessionmaker, demo.campaign_id, targets, CutRequest(size=20, replace=True), by="OA", client=dask)
    assert not distributed.failed, distributed.failed
    on_dask = await lists_of(sessionmaker, targets)
    assert len(on_dask) == len(distributed.lists), "replace should have deleted the first cut's lists"
    assert on_dask == in_process

    # Every list's doors lie in one partition (one target's part of one area).
    partition_of = {(p.target_id, int(a)): p.key for p in partitions for a in p.addresses["address_id"]}
    for target_id, name, _doors, _routing, address_ids in on_dask:
        assert len({partition_of[(target_id, a)] for a in address_ids}) == 1, f"list {name} crosses a partition edge"
    # Every door of every target is on exactly one list of that target.
    for target_id in targets:
        listed = [a for t, *_rest, ids in on_dask if t == target_id for a in ids]
        expected = [a for p in partitions if p.target_id == target_id for a in p.addresses["address_id"]]
        assert sorted(listed) == sorted(int(a) for a in expected)
