"""Partitions for a national cut: which area each stop lies in, and the cut of one partition.

Pure functions (no database, no server): `cut_partition` is what each Dask worker runs,
and what the in-process cut runs for each partition in turn, so both give the same lists.
A list never crosses a partition's edge because each partition is cut on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import shapely

from geo.streets import StreetNetworkError, street_network_from_lines
from geo.walklists import WalkListError, WalkListPlan, cut_walk_lists


def partition_labels(points: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """For each point (shapely points), the index of the first area polygon that covers it, or -1."""
    labels = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0 or len(areas) == 0:
        return labels
    tree = shapely.STRtree(areas)
    point_index, area_index = tree.query(points, predicate="covered_by")
    order = np.lexsort((area_index, point_index))  # by point, then lowest area first
    point_index, area_index = point_index[order], area_index[order]
    first = np.ones(len(point_index), dtype=bool)
    first[1:] = point_index[1:] != point_index[:-1]
    labels[point_index[first]] = area_index[first]
    return labels


@dataclass
class PartitionCut:
    """The lists of one partition, how they were routed, or why it could not be cut."""

    key: str
    plans: list[WalkListPlan]
    routing: Literal["street_network", "straight_line"]
    error: str | None = None


def cut_partition(
    key: str,
    stops: gpd.GeoDataFrame,
    lines: gpd.GeoDataFrame | None,
    size: int,
    unit: Literal["doors", "minutes"] = "doors",
    minutes_per_door: float = 1.5,
    walk_speed_m_per_min: float = 80.0,
) -> PartitionCut:
    """Build the street network of the partition's streets (if any) and cut its stops into walk lists."""
    network = None
    if lines is not None and len(lines):
        try:
            network = street_network_from_lines(lines)
        except StreetNetworkError:
            network = None  # unroutable streets: straight lines, as the single-target cut does
    routing: Literal["street_network", "straight_line"] = "street_network" if network is not None else "straight_line"
    try:
        plans = cut_walk_lists(stops, size, unit, network, minutes_per_door, walk_speed_m_per_min)
    except WalkListError as exc:
        return PartitionCut(key=key, plans=[], routing=routing, error=str(exc))
    return PartitionCut(key=key, plans=plans, routing=routing)
