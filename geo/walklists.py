"""Cutting stops into walk lists and ordering each list as a walking route.

Stops (addresses; a block of flats is one stop with many doors) are first split by
major roads into barrier regions (when a street network is known), then each region is
cut by recursive weighted bisection along its principal axis into lists of the target
size (doors, or estimated minutes), then each list is ordered as an open walking path on
street-network distance (straight-line without a network). All geometry work is in
EPSG:27700 metres; input and output geometries are WGS84 lon/lat.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import LineString, mapping

from geo.routing import order_stops, path_length
from geo.streets import (
    StreetNetwork,
    bng_to_lonlat,
    count_crossings,
    crossing_matrix,
    lonlat_to_bng,
    network_paths,
    region_ids,
    route_line_xy,
)

MAX_TARGET_SIZE = 500
SIZE_TOLERANCE = 0.10
# Added to the cost (not the reported length) of walking straight between two stops:
MAJOR_CROSSING_PENALTY_M = 2000.0  # never cross a major road between consecutive stops
BUSY_CROSSING_PENALTY_M = 60.0  # busy streets: one side, then the other
ROUTE_TIME_BUDGET_S = 0.004
_N_DIRECTIONS = 12
_NEIGHBOUR_M = 120.0
_LINK_M = 200.0


class WalkListError(ValueError):
    """Raised for input walk lists cannot be cut from (empty stops, bad target size...)."""


@dataclass
class WalkListPlan:
    """One walk list: stops in walking order, its size, route and barrier region."""

    stop_ids: list[Any]
    doors: int
    length_m: float
    minutes: float
    route: LineString  # WGS84 lon/lat
    region_id: int
    undersized: bool = False
    oversized: bool = False
    major_road_crossings: int = 0
    size: float = 0.0  # in the requested unit (doors or minutes)
    route_cost: float = 0.0  # length plus crossing penalties: what the ordering minimised
    # why a list is outside +-10%, when that is allowed: "small_region" (the whole region
    # between major roads has too few doors), "indivisible_region" (no number of lists
    # splits the region's doors within +-10%, e.g. 70 doors for lists of 50) or
    # "big_block" (one block of flats is bigger than the target)
    size_exception: str | None = None
    stop_index: list[int] = field(default_factory=list, repr=False)  # row positions in `stops`


@dataclass
class ListCosts:
    """Distances between the stops of one list and the cost the route ordering minimises."""

    dist: np.ndarray  # metres walked
    cost: np.ndarray  # dist + crossing penalties
    paths: Any  # NetworkPaths or None


def stop_cost_matrix(network: StreetNetwork | None, xy: np.ndarray) -> ListCosts:
    """Walking distances (network if known, else straight) and penalised routing costs.

    A straight hop that crosses a major road costs MAJOR_CROSSING_PENALTY_M more, one that
    crosses a busy (tertiary) street BUSY_CROSSING_PENALTY_M more, so routes do one side
    of a busy street and then the other, and zig-zag freely on quiet streets.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if network is None or xy.shape[0] < 2:
        dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        return ListCosts(dist=dist, cost=dist.copy(), paths=None)
    paths = network_paths(network, xy)
    dist = paths.dist
    cost = dist.copy()
    cost += MAJOR_CROSSING_PENALTY_M * crossing_matrix(network.major_tree, xy)
    cost += BUSY_CROSSING_PENALTY_M * crossing_matrix(network.busy_tree, xy)
    return ListCosts(dist=dist, cost=cost, paths=paths)


def _choose_parts(total: float, target: float) -> int:
    """Number of lists for a region: the count whose mean size is closest to the target."""
    if total <= target * (1 + SIZE_TOLERANCE):
        return 1
    lo = max(1, int(np.floor(total / (target * (1 + SIZE_TOLERANCE)))))
    hi = max(lo, int(np.ceil(total / (target * (1 - SIZE_TOLERANCE)))))
    ks = np.arange(lo, hi + 1)
    dev = np.abs(total / ks - target)
    return int(ks[int(np.argmin(dev))])


def _bisect(idx: np.ndarray, xy: np.ndarray, w: np.ndarray, k: int, out: list[np.ndarray]) -> None:
    """Recursive weighted bisection along the principal axis into k parts of equal weight."""
    if k <= 1 or idx.size <= 1:
        out.append(idx)
        return
    k1 = k // 2
    pts = xy[idx]
    ww = w[idx]
    total = float(ww.sum())
    centre = (pts * ww[:, None]).sum(axis=0) / total
    c = pts - centre
    cov = (c * ww[:, None]).T @ c / total
    _vals, vecs = np.linalg.eigh(cov)
    goal = total * k1 / k
    per = total / k
    major = vecs[:, 1]
    base = float(np.arctan2(major[1], major[0]))
    # The principal axis gives the most compact halves; other directions are tried only
    # when it cannot balance the halves (lumpy weights: blocks of flats).
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for step in range(_N_DIRECTIONS):
        ang = base + np.pi * step / _N_DIRECTIONS
        axis = np.array([np.cos(ang), np.sin(ang)])
        proj = c @ axis
        order = np.lexsort((c @ np.array([-axis[1], axis[0]]), proj))
        cum = np.cumsum(ww[order])
        pos = int(np.argmin(np.abs(cum[:-1] - goal)))
        err = abs(float(cum[pos]) - goal) / per
        penalty = 0.0 if step == 0 else 0.02 * min(step, _N_DIRECTIONS - step)
        score = err + penalty
        if best is None or score < best[0]:
            best = (score, order[: pos + 1], order[pos + 1 :])
        if step == 0 and err <= 0.02:
            break
    assert best is not None
    _, left, right = best
    _bisect(idx[left], xy, w, k1, out)
    _bisect(idx[right], xy, w, k - k1, out)


def _partition_region(
    idx: np.ndarray, xy: np.ndarray, w: np.ndarray, target: float
) -> list[tuple[np.ndarray, str]]:
    """Cut one region's stops into groups; big single blocks become their own lists."""
    groups: list[tuple[np.ndarray, str]] = []
    big = idx[w[idx] >= target * (1 - SIZE_TOLERANCE)]
    for b in big:
        groups.append((np.array([b]), "big_block"))
    rest = idx[w[idx] < target * (1 - SIZE_TOLERANCE)]
    if rest.size:
        k = _choose_parts(float(w[rest].sum()), target)
        parts: list[np.ndarray] = []
        _bisect(rest, xy, w, k, parts)
        parts = [p for p in parts if p.size]
        if len(parts) == 1 and float(w[rest].sum()) < target * (1 - SIZE_TOLERANCE):
            groups.append((parts[0], "small_region"))
            return groups
        if len(parts) > 1:
            parts = _rebalance(parts, xy, w, target)
        total = float(w[rest].sum())
        ks = np.arange(1, int(total // (target * (1 - SIZE_TOLERANCE))) + 2)
        feasible = bool(np.any(np.abs(total / ks - target) <= target * SIZE_TOLERANCE + 1e-9))
        kind = "cut" if feasible else "indivisible_region"
        groups.extend((p, kind) for p in parts if p.size)
    return groups


def _violation(size: np.ndarray | float, lo: float, hi: float) -> np.ndarray | float:
    return np.maximum(0.0, lo - size) + np.maximum(0.0, size - hi)


def _rebalance(
    parts: list[np.ndarray], xy: np.ndarray, w: np.ndarray, target: float, max_moves: int = 2000
) -> list[np.ndarray]:
    """Move boundary stops between neighbouring lists of one region to bring sizes in range.

    Greedy: each move takes one stop that has a near neighbour in the receiving list and
    must lower the summed out-of-range amount of the two lists; among equals the stop
    closest to the receiving list's centre moves.
    """
    lo, hi = target * (1 - SIZE_TOLERANCE), target * (1 + SIZE_TOLERANCE)
    idx = np.concatenate(parts)
    label = np.concatenate([np.full(p.size, i) for i, p in enumerate(parts)])
    pts = xy[idx]
    ww = w[idx]
    kk = min(9, idx.size)
    dd, nb = cKDTree(pts).query(pts, k=kk)
    nb = np.where(dd <= _NEIGHBOUR_M, nb, -1)[:, 1:]
    nparts = len(parts)
    size = np.bincount(label, weights=ww, minlength=nparts)
    count = np.bincount(label, minlength=nparts)
    sumxy = np.zeros((nparts, 2))
    np.add.at(sumxy, label, pts)
    for _ in range(max_moves):
        viol = _violation(size, lo, hi)
        bad = np.flatnonzero(viol > 0)
        if bad.size == 0:
            break
        best: tuple[float, float, float, int, int] | None = None  # (dviol, dsq, dist, stop, to)
        nbl = np.where(nb >= 0, label[np.maximum(nb, 0)], -1)  # neighbours' lists
        for g in bad:
            if size[g] > hi:
                cand_stops = np.flatnonzero((label == g) & (count[g] > 1))
                for s_ in cand_stops:
                    for h in set(nbl[s_][(nbl[s_] >= 0) & (nbl[s_] != g)].tolist()):
                        best = _consider(
                            best, s_, g, h, size, ww, lo, hi, pts, sumxy, count, target
                        )
            else:
                near = np.flatnonzero(np.any(nbl == g, axis=1) & (label != g))
                for s_ in near:
                    h = int(label[s_])
                    if count[h] <= 1:
                        continue
                    best = _consider(best, s_, h, g, size, ww, lo, hi, pts, sumxy, count, target)
        if best is None:
            state = (label, size, count, sumxy)
            if not any(
                _chain_move(int(g), state, nb, pts, ww, lo, hi) for g in bad[np.argsort(-viol[bad])]
            ):
                break
            continue
        s_, to = best[3], best[4]
        fr = int(label[s_])
        label[s_] = to
        size[fr] -= ww[s_]
        size[to] += ww[s_]
        count[fr] -= 1
        count[to] += 1
        sumxy[fr] -= pts[s_]
        sumxy[to] += pts[s_]
    return [idx[label == i] for i in range(nparts) if (label == i).any()]


def _chain_move(g, state, nb, pts, ww, lo, hi, max_depth: int = 6) -> bool:
    """Pass single stops along a chain of neighbouring lists, from an oversized list to one
    with room (or to an undersized list from one with spare), if that lowers the total
    out-of-range amount. Returns whether a chain was applied."""
    label, size, count, sumxy = state
    valid = nb >= 0
    src = np.repeat(np.arange(len(label)), nb.shape[1])[valid.reshape(-1)]
    dst = nb.reshape(-1)[valid.reshape(-1)]
    la, lb = label[src], label[dst]
    cross = la != lb
    src, dst, la, lb = src[cross], dst[cross], la[cross], lb[cross]
    adj: dict[int, set[int]] = {}
    for a_, b_ in zip(la.tolist(), lb.tolist(), strict=True):
        adj.setdefault(a_, set()).add(b_)
        adj.setdefault(b_, set()).add(a_)
    over = size[g] > hi
    # BFS from g to the nearest list that can give (undersized g) or take (oversized g)
    prev = {g: -1}
    frontier = [g]
    found = -1
    for _depth in range(max_depth):
        nxt_frontier = []
        for a_ in frontier:
            for b_ in sorted(adj.get(a_, ())):
                if b_ in prev:
                    continue
                prev[b_] = a_
                ok = size[b_] + 1 <= hi if over else size[b_] - 1 >= lo
                if ok and count[b_] > 1:
                    found = b_
                    break
                nxt_frontier.append(b_)
            if found >= 0:
                break
        if found >= 0 or not nxt_frontier:
            break
        frontier = nxt_frontier
    if found < 0:
        return False
    chain = [found]
    while prev[chain[-1]] != -1:
        chain.append(prev[chain[-1]])
    chain.reverse()  # g ... found
    links = (
        list(itertools.pairwise(chain))
        if over
        else list(zip(chain[1:], chain[:-1], strict=True))[::-1]
    )
    before = float(_violation(size, lo, hi).sum())
    moved: list[tuple[int, int, int]] = []
    for fr, to in links:
        cand = src[(label[src] == fr) & (label[dst] == to)]
        if cand.size == 0 or count[fr] <= 1:
            break
        centre = sumxy[to] / max(count[to], 1)
        key = np.lexsort((np.hypot(*(pts[cand] - centre).T), ww[cand]))
        s_ = int(cand[key[0]])
        _move(s_, fr, to, state, pts, ww)
        moved.append((s_, fr, to))
    if len(moved) == len(links) and float(_violation(size, lo, hi).sum()) < before - 1e-9:
        return True
    for s_, fr, to in reversed(moved):
        _move(s_, to, fr, state, pts, ww)
    return False


def _move(s_, fr, to, state, pts, ww) -> None:
    label, size, count, sumxy = state
    label[s_] = to
    size[fr] -= ww[s_]
    size[to] += ww[s_]
    count[fr] -= 1
    count[to] += 1
    sumxy[fr] -= pts[s_]
    sumxy[to] += pts[s_]


def _consider(best, s_, fr, to, size, ww, lo, hi, pts, sumxy, count, target):
    """Keep the better move: lower out-of-range total first, then more even sizes, then nearer."""
    a0, b0 = size[fr], size[to]
    a1, b1 = a0 - ww[s_], b0 + ww[s_]
    dviol = float(
        _violation(a1, lo, hi)
        + _violation(b1, lo, hi)
        - _violation(a0, lo, hi)
        - _violation(b0, lo, hi)
    )
    if dviol > 1e-9:
        return best
    dsq = float((a1 - target) ** 2 + (b1 - target) ** 2 - (a0 - target) ** 2 - (b0 - target) ** 2)
    if dviol >= -1e-9 and dsq >= -1e-9:
        return best
    centre = sumxy[to] / max(count[to], 1)
    dist = float(np.hypot(*(pts[s_] - centre)))
    key = (round(dviol, 9), round(dsq, 9), dist, int(s_), int(to))
    if best is None or key[:3] < best[:3]:
        return key
    return best


def _split_regions_at_dangling_roads(
    network: StreetNetwork, xy: np.ndarray, regions: np.ndarray, k: int = 10
) -> np.ndarray:
    """Refine regions that contain a dead-ending major road: stops are linked to their k
    nearest stops when the straight hop crosses no major road; each linked group becomes
    its own region. Returns new region ids (original id * 1000 + component)."""
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import connected_components

    polys = network.regions
    hit = network.major_tree.query(polys, predicate="contains")
    dangling = np.unique(hit[0])
    out = regions.astype(np.int64) * 1000
    for r in dangling:
        sel = np.flatnonzero(regions == r)
        if sel.size < 2:
            continue
        pts = xy[sel]
        kk = min(k + 1, sel.size)
        dd, nb = cKDTree(pts).query(pts, k=kk)
        a = np.repeat(np.arange(sel.size), kk - 1)
        b = nb[:, 1:].reshape(-1)
        dist = dd[:, 1:].reshape(-1)
        ok = dist <= _LINK_M
        a, b = a[ok], b[ok]
        segs = shapely.linestrings(np.stack([pts[a], pts[b]], axis=1))
        crossing = np.zeros(a.size, dtype=bool)
        h = network.major_tree.query(segs, predicate="intersects")
        crossing[np.unique(h[0])] = True
        a, b = a[~crossing], b[~crossing]
        g = coo_array((np.ones(a.size), (a, b)), shape=(sel.size, sel.size))
        _, comp = connected_components(g, directed=False)
        out[sel] = int(r) * 1000 + comp
    return out


def _stop_weights(
    xy: np.ndarray,
    doors: np.ndarray,
    regions: np.ndarray,
    unit: str,
    minutes_per_door: float,
    speed: float,
) -> np.ndarray:
    if unit == "doors":
        return doors.astype(float)
    # minutes: time at the doors plus the walk to the nearest other stop of the region
    walk = np.zeros(len(xy))
    for r in np.unique(regions):
        sel = np.flatnonzero(regions == r)
        if sel.size < 2:
            continue
        d, _ = cKDTree(xy[sel]).query(xy[sel], k=2)
        walk[sel] = np.minimum(d[:, 1], 200.0)
    return doors * minutes_per_door + walk / speed


def cut_walk_lists(
    stops: gpd.GeoDataFrame,
    target_size: int = 50,
    unit: Literal["doors", "minutes"] = "doors",
    network: StreetNetwork | None = None,
    minutes_per_door: float = 1.5,
    walk_speed_m_per_min: float = 80.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[WalkListPlan]:
    """Cut stops (GeoDataFrame of WGS84 points: stop_id, doors, street, house_number) into
    walk lists of about `target_size` doors or minutes, each ordered as a walking route.

    Lists never mix barrier regions (sides of major roads) when a network is given; a block
    of flats is one stop and is never split; sizes are within +-10% of the target except
    for regions too small (`undersized`) or single blocks too big (`oversized`).
    """
    if stops is None or len(stops) == 0:
        raise WalkListError("no stops to cut into walk lists")
    if not isinstance(target_size, (int, np.integer)) or isinstance(target_size, bool):
        raise WalkListError(f"target_size must be an integer, got {target_size!r}")
    if target_size <= 0 or target_size > MAX_TARGET_SIZE:
        raise WalkListError(
            f"target_size must be between 1 and {MAX_TARGET_SIZE}, got {target_size}"
        )
    if unit not in ("doors", "minutes"):
        raise WalkListError(f"unit must be 'doors' or 'minutes', got {unit!r}")
    if minutes_per_door <= 0 or walk_speed_m_per_min <= 0:
        raise WalkListError("minutes_per_door and walk_speed_m_per_min must be positive")
    for col in ("stop_id", "doors"):
        if col not in stops.columns:
            raise WalkListError(f"stops need a {col!r} column")
    if stops["stop_id"].duplicated().any():
        dup = stops["stop_id"][stops["stop_id"].duplicated()].iloc[0]
        raise WalkListError(f"stop_id values must be unique; {dup!r} repeats")
    if stops.crs is None:
        raise WalkListError("stops need an explicit CRS (WGS84 lon/lat, EPSG:4326)")
    geom = stops.geometry
    if geom.isna().any() or geom.is_empty.any():
        raise WalkListError("every stop needs a point geometry")
    if not stops.crs.equals("EPSG:4326"):
        geom = geom.to_crs("EPSG:4326")
    if not (geom.geom_type == "Point").all():
        raise WalkListError("stops must be points")
    doors = np.asarray(stops["doors"], dtype=np.int64)
    if (doors < 1).any():
        raise WalkListError("every stop needs at least one door")
    lonlat = np.column_stack([geom.x.to_numpy(), geom.y.to_numpy()])
    xy = lonlat_to_bng(lonlat)
    ids = list(stops["stop_id"])
    regions = region_ids(network, xy) if network is not None else np.zeros(len(xy), dtype=np.int64)
    if network is not None:
        regions = _split_regions_at_dangling_roads(network, xy, regions)
    w = _stop_weights(xy, doors, regions, unit, minutes_per_door, walk_speed_m_per_min)

    # In minutes, walking time is only estimated before routing: one calibration pass
    # routes the lists, scales each region's walking estimate to the routed walking time,
    # and cuts again.
    passes = 2 if unit == "minutes" else 1
    door_part = doors * minutes_per_door
    done = 0
    plans: list[WalkListPlan] = []
    for pass_no in range(passes):
        groups: list[tuple[np.ndarray, str, int]] = []
        for r in np.unique(regions):
            idx = np.flatnonzero(regions == r)
            for g, kind in _partition_region(idx, xy, w, float(target_size)):
                groups.append((g, kind, int(r)))
        remaining_passes = passes - pass_no - 1
        total = done + len(groups) * (1 + remaining_passes)
        plans = []
        for g, kind, r in groups:
            plan = _plan_for_group(
                g,
                xy,
                doors,
                ids,
                r,
                network,
                target_size,
                unit,
                minutes_per_door,
                walk_speed_m_per_min,
            )
            if kind in ("small_region", "big_block", "indivisible_region") and (
                plan.undersized or plan.oversized
            ):
                plan.size_exception = kind
            plans.append(plan)
            done += 1
            if progress is not None:
                progress(done, total)
        if remaining_passes:
            walk_est = w - door_part
            routed = np.zeros(len(xy))
            for (g, _, _), plan in zip(groups, plans, strict=True):
                routed[g] = plan.length_m / walk_speed_m_per_min / len(g)
            for r in np.unique(regions):
                sel = regions == r
                est = float(walk_est[sel].sum())
                if est > 0:
                    w[sel] = door_part[sel] + walk_est[sel] * (float(routed[sel].sum()) / est)
    return plans


def _plan_for_group(
    g: np.ndarray,
    xy: np.ndarray,
    doors: np.ndarray,
    ids: Sequence[Any],
    region: int,
    network: StreetNetwork | None,
    target_size: int,
    unit: str,
    minutes_per_door: float,
    speed: float,
) -> WalkListPlan:
    pts = xy[g]
    costs = stop_cost_matrix(network, pts)
    order = order_stops(costs.cost, time_budget_s=ROUTE_TIME_BUDGET_S) if len(g) > 1 else [0]
    length = path_length(costs.dist, order)
    n_doors = int(doors[g].sum())
    minutes = length / speed + n_doors * minutes_per_door
    line_xy = route_line_xy(network, costs.paths, pts, order)
    route = LineString(bng_to_lonlat(np.asarray(line_xy.coords)))
    crossings = count_crossings(network.major_tree, pts[order]) if network is not None else 0
    size = float(n_doors) if unit == "doors" else minutes
    lo, hi = target_size * (1 - SIZE_TOLERANCE), target_size * (1 + SIZE_TOLERANCE)
    return WalkListPlan(
        stop_ids=[ids[int(g[i])] for i in order],
        doors=n_doors,
        length_m=float(length),
        minutes=float(minutes),
        route=route,
        region_id=region,
        undersized=bool(size < lo),
        oversized=bool(size > hi),
        major_road_crossings=crossings,
        size=size,
        route_cost=path_length(costs.cost, order),
        stop_index=[int(g[i]) for i in order],
    )


def plans_to_geojson(plans: Sequence[WalkListPlan], stops: gpd.GeoDataFrame) -> dict[str, Any]:
    """GeoJSON FeatureCollection (WGS84): one LineString per list, one Point per stop."""
    geom = stops.geometry
    if stops.crs is not None and not stops.crs.equals("EPSG:4326"):
        geom = geom.to_crs("EPSG:4326")
    by_id = {sid: i for i, sid in enumerate(stops["stop_id"])}
    features: list[dict[str, Any]] = []
    for n, plan in enumerate(plans, start=1):
        features.append(
            {
                "type": "Feature",
                "geometry": mapping(plan.route),
                "properties": {
                    "kind": "route",
                    "list_no": n,
                    "region_id": plan.region_id,
                    "doors": plan.doors,
                    "stops": len(plan.stop_ids),
                    "length_m": round(plan.length_m, 1),
                    "minutes": round(plan.minutes, 1),
                    "undersized": plan.undersized,
                    "oversized": plan.oversized,
                    "major_road_crossings": plan.major_road_crossings,
                },
            }
        )
        for seq, sid in enumerate(plan.stop_ids, start=1):
            row = by_id[sid]
            props: dict[str, Any] = {
                "kind": "stop",
                "list_no": n,
                "seq": seq,
                "stop_id": str(sid),
                "doors": int(stops["doors"].iloc[row]),
            }
            for col in ("street", "house_number"):
                if col in stops.columns:
                    v = stops[col].iloc[row]
                    props[col] = None if v is None else str(v)
            features.append(
                {"type": "Feature", "geometry": mapping(geom.iloc[row]), "properties": props}
            )
    return json.loads(
        json.dumps({"type": "FeatureCollection", "features": features}, default=_jsonable)
    )


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def list_contiguity_gap_m(xy: np.ndarray) -> float:
    """Longest edge of the minimum spanning tree of a list's stops (EPSG:27700 metres).

    A list is contiguous when this gap is small: no part of it is far from the rest.
    """
    from geo.bounds import mst_gap

    return mst_gap(np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1]))


__all__ = [
    "BUSY_CROSSING_PENALTY_M",
    "MAJOR_CROSSING_PENALTY_M",
    "ListCosts",
    "WalkListError",
    "WalkListPlan",
    "cut_walk_lists",
    "list_contiguity_gap_m",
    "plans_to_geojson",
    "stop_cost_matrix",
]
