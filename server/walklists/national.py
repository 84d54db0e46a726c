"""National cut: many targets at once, fanned out per partition (a target, or its part in one ward or constituency) on Dask.

The driver (`canvass cut --all --by ward --dask`) reads each target's doors and the
streets around each partition from the database, sends every partition to a
dask.distributed cluster (a LocalCluster by default, `CANVASS_DASK_SCHEDULER` in
production), where each worker runs the pure `geo.partitions.cut_partition`, and
writes each partition's lists in its own short transaction as soon as that partition
finishes. Without Dask the same partitions are cut one after another in this process,
giving the same lists. No list crosses a partition's edge: each is cut on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import select

from geo.partitions import PartitionCut, cut_partition, partition_labels
from server.db.models import Target, WalkList
from server.errors import InvalidInput, NotFound
from server.geography.services import campaign_area_polygons
from server.settings import Settings
from server.walklists.schemas import CutRequest
from server.walklists.services import (
    CutInput,
    delete_unassigned_lists,
    store_cut,
    street_lines_for,
    target_doors,
)

PartitionProgress = Callable[[int, int, int], None]
"""progress(partitions done, partitions in all, doors written so far)."""


@dataclass
class Partition:
    """The doors of one target inside one area (or the whole target), ready to cut."""

    key: str
    target_id: int
    name: str
    stops: gpd.GeoDataFrame
    addresses: pd.DataFrame
    lines: gpd.GeoDataFrame | None


@dataclass
class NationalCutResult:
    """What a national cut wrote, and the partitions it could not cut (with why)."""

    lists: list[WalkList] = field(default_factory=list)
    partitions: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    routing: dict[str, int] = field(default_factory=dict)


async def gather_partitions(session: Any, campaign_id: int, target_ids: Sequence[int], by: str | None) -> list[Partition]:
    """Each target's doors, split by the campaign's areas of kind `by` (None: one partition per target)."""
    areas = await campaign_area_polygons(session, campaign_id, kind=by) if by else None
    if by and (areas is None or areas.empty):
        raise InvalidInput(f"The campaign has no {by} boundaries to split targets by: import them, or cut by target.")
    partitions: list[Partition] = []
    for target_id in target_ids:
        target = await session.get(Target, target_id)
        if target is None or target.campaign_id != campaign_id:
            raise NotFound(f"No target {target_id} in this campaign.")
        try:
            stops, addresses, _skipped = await target_doors(session, campaign_id, target)
        except InvalidInput:
            continue  # a target with no doors to visit has nothing to cut
        if areas is None:
            groups = [("", target.name, np.ones(len(stops), dtype=bool))]
        else:
            labels = partition_labels(stops.geometry.to_numpy(), areas.geometry.to_numpy())
            groups = [(str(areas["code"].iloc[i]) if i >= 0 else "outside",
                       f"{target.name} {areas['name'].iloc[i] or areas['code'].iloc[i]}" if i >= 0 else f"{target.name} outside {by}s",
                       labels == i) for i in sorted(set(labels.tolist()))]
        for code, name, mask in groups:
            part_stops = stops[mask].reset_index(drop=True)
            part_addresses = addresses[addresses["building_key"].isin(set(part_stops["stop_id"]))]
            lines = await street_lines_for(session, campaign_id, part_stops.total_bounds)
            partitions.append(Partition(key=f"{target_id}:{code}", target_id=target_id, name=name, stops=part_stops,
                                        addresses=part_addresses, lines=lines))
    return partitions


@contextlib.asynccontextmanager
async def dask_client(settings: Settings, workers: int | None = None) -> AsyncIterator[Any]:
    """A Dask client on `settings.dask_scheduler`, or on a LocalCluster of `workers` processes (default: one per core)."""
    from distributed import Client, LocalCluster

    if settings.dask_scheduler:
        async with Client(settings.dask_scheduler, asynchronous=True) as client:
            yield client
        return
    n_workers = workers or settings.dask_workers or None
    async with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, asynchronous=True,
                            dashboard_address=None) as cluster, Client(cluster, asynchronous=True) as client:
        await client.wait_for_workers(len(cluster.workers))
        yield client


async def _cuts(partitions: Sequence[Partition], request: CutRequest, client: Any | None) -> AsyncIterator[PartitionCut]:
    """Each partition's cut as it finishes: on the Dask cluster, or one after another in a thread here."""
    args = (request.size, request.unit, request.minutes_per_door, request.walk_speed_m_per_min)
    if client is None:
        for p in partitions:
            yield await asyncio.to_thread(cut_partition, p.key, p.stops, p.lines, *args)
        return
    from distributed import as_completed

    futures, data = [], []
    for p in partitions:
        # Scattered once, held here until the end: a task's inputs must outlive its submission.
        stops = await client.scatter(p.stops)
        lines = await client.scatter(p.lines) if p.lines is not None else None
        data.append((stops, lines))
        futures.append(client.submit(cut_partition, p.key, stops, lines, *args, key=f"cut-{p.key}", pure=False))
    async for future in as_completed(futures):
        yield await future
    del data


async def national_cut(
    sessionmaker: Any, campaign_id: int, target_ids: Sequence[int], request: CutRequest, by: str | None = None,
    client: Any | None = None, progress: PartitionProgress | None = None,
) -> NationalCutResult:
    """Cut every target (split by areas of kind `by`), writing each partition's lists as it finishes."""
    async with sessionmaker() as session:
        partitions = await gather_partitions(session, campaign_id, target_ids, by)
        await session.rollback()
    by_key = {p.key: p for p in partitions}
    result = NationalCutResult(partitions=len(partitions))
    if request.replace:
        async with sessionmaker() as session:
            for target_id in target_ids:
                await delete_unassigned_lists(session, campaign_id, target_id)
            await session.commit()
    doors = finished = 0
    if progress is not None:
        progress(0, len(partitions), 0)
    async for cut in _cuts(partitions, request, client):
        part = by_key[cut.key]
        if cut.error is not None:
            result.failed[part.name] = cut.error
        else:
            async with sessionmaker() as session:
                stored = await store_cut(session, campaign_id, part.target_id,
                                         CutInput(target_name=part.name, stops=part.stops, addresses=part.addresses, network=None, routing=cut.routing),
                                         cut.plans, replace=False, number_from=1)
                await session.commit()
            result.lists.extend(stored)
            result.routing[cut.routing] = result.routing.get(cut.routing, 0) + len(stored)
            doors += sum(w.doors for w in stored)
        finished += 1
        if progress is not None:
            progress(finished, len(partitions), doors)
    return result


async def all_target_ids(session: Any, campaign_id: int) -> list[int]:
    """Every target of the campaign, oldest first."""
    return list((await session.scalars(select(Target.id).where(Target.campaign_id == campaign_id).order_by(Target.id))).all())
