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
_GAP_FLOOR_M = 80.0  # re-cuts, swaps and kicks may leave a list with gaps up to this
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
    # splits the region's doors within +-10%, e.g. 70 or 129 doors for lists of 50: one
    # list of the region takes what the others, within range, leave) or "big_block" (one
    # block of flats is bigger than the target)
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


def _region_targets(total: float, target: float) -> tuple[list[float], int | None]:
    """Planned sizes of a region's lists, and which one (if any) is a forced exception.

    When some number of lists splits the region within +-10%, that many lists of equal
    size. Otherwise (e.g. 70 doors, or 129, for lists of 50) at least one list must be out
    of range, and only one is: all others sit at the edge of the range and one remainder
    list takes what is left, sized as close to the target as that allows.
    """
    lo, hi = target * (1 - SIZE_TOLERANCE), target * (1 + SIZE_TOLERANCE)
    k = _choose_parts(total, target)
    if lo * k - 1e-9 <= total <= hi * k + 1e-9:
        return [total / k] * k, None
    best: tuple[float, int, float] = (abs(total - target), 0, total)  # (deviation, m, r)
    for m in range(1, int(total // lo) + 1):
        r_lo, r_hi = total - m * hi, total - m * lo  # the remainder when m lists are in range
        if r_hi <= 0:
            break
        r = min(max(target, r_lo), r_hi)
        if abs(r - target) < best[0] - 1e-9:
            best = (abs(r - target), m, r)
    _, m, r = best
    if m == 0:
        return [total], 0
    return [(total - r) / m] * m + [r], m


def _bisect(
    idx: np.ndarray,
    xy: np.ndarray,
    w: np.ndarray,
    targets: Sequence[float],
    out: list[tuple[np.ndarray, list[int]]],
    first: int = 0,
) -> None:
    """Recursive weighted bisection along the principal axis into parts of the planned
    sizes `targets`; appends (stop indices, positions in `targets` the part stands for)."""
    k = len(targets)
    if k <= 1 or idx.size <= 1:
        out.append((idx, list(range(first, first + k))))
        return
    k1 = k // 2
    pts = xy[idx]
    ww = w[idx]
    total = float(ww.sum())
    centre = (pts * ww[:, None]).sum(axis=0) / total
    c = pts - centre
    cov = (c * ww[:, None]).T @ c / total
    _vals, vecs = np.linalg.eigh(cov)
    goal = total * float(sum(targets[:k1])) / float(sum(targets))
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
    _bisect(idx[left], xy, w, targets[:k1], out, first)
    _bisect(idx[right], xy, w, targets[k1:], out, first + k1)


def _partition_region(
    idx: np.ndarray, xy: np.ndarray, w: np.ndarray, target: float
) -> list[tuple[np.ndarray, str]]:
    """Cut one region's stops into groups; big single blocks become their own lists.

    Kinds: "big_block", "small_region" / "indivisible_region" (the one list a region's
    size forces out of range, see `_region_targets`) or "cut" (every other list, which
    should be within +-10%; if it is not, that is a miss of the cutter, not an exception).
    """
    groups: list[tuple[np.ndarray, str]] = []
    lo, hi = target * (1 - SIZE_TOLERANCE), target * (1 + SIZE_TOLERANCE)
    big = idx[w[idx] >= lo]
    for b in big:
        groups.append((np.array([b]), "big_block"))
    rest = idx[w[idx] < lo]
    if not rest.size:
        return groups
    total = float(w[rest].sum())
    targets, remainder = _region_targets(total, target)
    out: list[tuple[np.ndarray, list[int]]] = []
    _bisect(rest, xy, w, targets, out)
    parts = [p for p, _ in out]
    p_lo = np.full(len(out), lo)
    p_hi = np.full(len(out), hi)
    p_tg = np.array([sum(targets[i] for i in ti) for _, ti in out])
    forced = np.array([remainder in ti for _, ti in out])
    # The forced list may be anywhere below (above) the range while the others are made
    # to fit; then it is pulled towards its planned size, as far as the others still fit.
    if remainder is not None and targets[remainder] < lo:
        p_lo[forced] = 0.0
        tight_lo, tight_hi = p_lo.copy(), p_hi.copy()
        tight_lo[forced] = p_tg[forced] - 0.5
    elif remainder is not None:
        p_hi[forced] = np.inf
        tight_lo, tight_hi = p_lo.copy(), p_hi.copy()
        tight_hi[forced] = p_tg[forced] + 0.5
    if len(parts) > 1:
        parts = _rebalance(parts, xy, w, p_lo, p_hi, p_tg)
        if remainder is not None:
            tight = _rebalance(parts, xy, w, tight_lo, tight_hi, p_tg)
            sizes = np.array([float(w[p].sum()) for p in tight])
            dev = np.abs(sizes - p_tg)[forced].sum()
            old_dev = np.abs(np.array([float(w[p].sum()) for p in parts]) - p_tg)[forced].sum()
            if not np.any(_violation(sizes, p_lo, p_hi) > 1e-9) and dev < old_dev:
                parts = tight
    if remainder is None:
        kinds = ["cut"] * len(parts)
    else:
        kind = "small_region" if len(targets) == 1 and total < lo else "indivisible_region"
        kinds = [kind if f else "cut" for f in forced]
    groups.extend((p, k) for p, k in zip(parts, kinds, strict=True) if p.size)
    return groups


def _violation(
    size: np.ndarray | float, lo: np.ndarray | float, hi: np.ndarray | float
) -> np.ndarray | float:
    return np.maximum(0.0, lo - size) + np.maximum(0.0, size - hi)


def _rebalance(
    parts: list[np.ndarray],
    xy: np.ndarray,
    w: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    tg: np.ndarray,
    max_moves: int = 2000,
    max_escapes: int = 20,
) -> list[np.ndarray]:
    """Bring the lists of one region within their size range [lo, hi] (per list).

    First `_settle`: greedy single-stop moves, chains and swaps between neighbouring lists.
    Lists still out of range are usually lumpy (a few big blocks of flats); for them a
    list and a neighbour are cut again by a new line (`_recut_pair`), or a block of flats
    is handed to a neighbouring list and the sizes settled again around it (`_kick`).
    Lists keep their number and order (one list per entry of `parts`).
    """
    idx = np.concatenate(parts)
    label = np.concatenate([np.full(p.size, i) for i, p in enumerate(parts)])
    pts = xy[idx]
    ww = w[idx]
    kk = min(13, idx.size)
    dd, nb = cKDTree(pts).query(pts, k=kk)
    nb = np.where(dd <= _NEIGHBOUR_M, nb, -1)[:, 1:]
    nparts = len(parts)
    size = np.bincount(label, weights=ww, minlength=nparts)
    count = np.bincount(label, minlength=nparts)
    sumxy = np.zeros((nparts, 2))
    np.add.at(sumxy, label, pts)
    state = (label, size, count, sumxy)
    bounds = (lo, hi, tg)
    movable = np.ones(idx.size, dtype=bool)
    _settle(state, nb, pts, ww, bounds, max_moves, movable)
    tried: set[tuple[int, ...]] = set()
    for _ in range(max_escapes):
        viol = _violation(size, lo, hi)
        bad = np.flatnonzero(viol > 1e-9)
        if bad.size == 0:
            break
        order = bad[np.argsort(-viol[bad])].tolist()
        if not any(_recut_pair(g, state, nb, pts, ww, bounds, tried) for g in order) and not any(
            _kick(g, state, nb, pts, ww, bounds, max_moves, movable) for g in order
        ):
            break
        _settle(state, nb, pts, ww, bounds, max_moves, movable)
    return [idx[label == i] for i in range(nparts)]


def _settle(state, nb, pts, ww, bounds, max_moves: int, movable: np.ndarray) -> None:
    """Greedy moves until every list is in range or none helps.

    Each move takes one stop that has a near neighbour in the receiving list and must lower
    the summed out-of-range amount of the two lists; among equals the stop closest to the
    receiving list's centre moves. When no single move helps, chains of single-stop moves
    through neighbouring lists (`_chain_move`), then swaps of two stops between
    neighbouring lists (`_swap_move`) are tried. Only `movable` stops move.
    """
    label, size, count, _sumxy = state
    lo, hi, _tg = bounds
    for _ in range(max_moves):
        viol = _violation(size, lo, hi)
        bad = np.flatnonzero(viol > 1e-9)
        if bad.size == 0:
            return
        best: tuple[float, float, float, int, int] | None = None  # (dviol, dsq, dist, stop, to)
        nbl = np.where(nb >= 0, label[np.maximum(nb, 0)], -1)  # neighbours' lists
        for g in bad:
            if size[g] > hi[g]:
                cand_stops = np.flatnonzero((label == g) & movable & (count[g] > 1))
                for s_ in cand_stops:
                    for h in set(nbl[s_][(nbl[s_] >= 0) & (nbl[s_] != g)].tolist()):
                        best = _consider(best, s_, g, h, state, ww, pts, bounds)
            else:
                near = np.flatnonzero(np.any(nbl == g, axis=1) & (label != g) & movable)
                for s_ in near:
                    h = int(label[s_])
                    if count[h] <= 1:
                        continue
                    best = _consider(best, s_, h, g, state, ww, pts, bounds)
        if best is not None:
            s_, to = best[3], best[4]
            _move(s_, int(label[s_]), to, state, pts, ww)
            continue
        order = bad[np.argsort(-viol[bad])]
        if any(_chain_move(int(g), state, nb, pts, ww, lo, hi, movable) for g in order):
            continue
        if not any(_swap_move(int(g), state, nb, pts, ww, bounds, movable) for g in order):
            return


def _kick(g, state, nb, pts, ww, bounds, max_moves: int, movable, tries: int = 8) -> bool:
    """Hand one block of flats of list g to a neighbouring list (g oversized) or take one
    from a neighbour (g undersized), then `_settle` the sizes around it with that block
    held where it was put; keep the result only if the summed out-of-range amount went
    down and no list became less contiguous (`_still_contiguous`). Returns whether a kick
    was kept. A block is a stop heavier than 1.5 times the median stop."""
    label, size, count, _sumxy = state
    lo, hi, _tg = bounds
    before = float(_violation(size, lo, hi).sum())
    nbl = np.where(nb >= 0, label[np.maximum(nb, 0)], -1)
    light = ww <= 1.5 * float(np.median(ww))
    over = size[g] > hi[g]
    if over:
        cand = np.flatnonzero((label == g) & ~light & np.any((nbl >= 0) & (nbl != g), axis=1))
    else:
        cand = np.flatnonzero((label != g) & ~light & np.any(nbl == g, axis=1))
    cand = cand[movable[cand]]
    cand = cand[np.argsort(-ww[cand], kind="stable")]
    saved = [a.copy() for a in state]
    n_tried = 0
    for s_ in cand.tolist():
        fr = g if over else int(label[s_])
        if count[fr] <= 1:
            continue
        targets = sorted({int(x) for x in nbl[s_] if x >= 0 and x != g}) if over else [g]
        for to in targets:
            if n_tried >= tries:
                return False
            n_tried += 1
            _move(s_, fr, to, state, pts, ww)
            movable[s_] = False
            _settle(state, nb, pts, ww, bounds, max_moves, movable)
            movable[s_] = True
            if float(_violation(size, lo, hi).sum()) < before - 1e-9 and _still_contiguous(
                label, saved[0], pts
            ):
                return True
            for a, b in zip(state, saved, strict=True):
                a[...] = b
    return False


def _part_adjacency(label: np.ndarray, nb: np.ndarray) -> dict[int, dict[int, int]]:
    """Neighbouring lists: {list: {neighbouring list: number of near stop pairs}}."""
    valid = nb >= 0
    src = np.repeat(np.arange(len(label)), nb.shape[1])[valid.reshape(-1)]
    dst = nb.reshape(-1)[valid.reshape(-1)]
    la, lb = label[src], label[dst]
    cross = la != lb
    adj: dict[int, dict[int, int]] = {}
    for a_, b_ in zip(la[cross].tolist(), lb[cross].tolist(), strict=True):
        adj.setdefault(a_, {}).setdefault(b_, 0)
        adj[a_][b_] += 1
        adj.setdefault(b_, {}).setdefault(a_, 0)
        adj[b_][a_] += 1
    return adj


def _chain_move(g, state, nb, pts, ww, lo, hi, movable, max_depth: int = 6) -> bool:
    """Pass single stops along a chain of neighbouring lists, from an oversized list to one
    with room (or to an undersized list from one with spare), if that lowers the total
    out-of-range amount. Returns whether a chain was applied."""
    label, size, count, sumxy = state
    valid = nb >= 0
    src = np.repeat(np.arange(len(label)), nb.shape[1])[valid.reshape(-1)]
    dst = nb.reshape(-1)[valid.reshape(-1)]
    cross = label[src] != label[dst]
    src, dst = src[cross], dst[cross]
    adj = _part_adjacency(label, nb)
    over = size[g] > hi[g]
    # BFS from g to the nearest list that can give (undersized g) or take (oversized g)
    prev = {g: -1}
    frontier = [g]
    found = -1
    for _depth in range(max_depth):
        nxt_frontier = []
        for a_ in frontier:
            for b_ in sorted(adj.get(a_, {})):
                if b_ in prev:
                    continue
                prev[b_] = a_
                ok = size[b_] + 1 <= hi[b_] if over else size[b_] - 1 >= lo[b_]
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
        cand = src[(label[src] == fr) & (label[dst] == to) & movable[src]]
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


def _swap_move(g, state, nb, pts, ww, bounds, movable, tries: int = 20) -> bool:
    """Swap one stop of list g for one stop of a neighbouring list when that lowers the
    out-of-range total: a block of flats for one of another size (g of 28 + 28 doors and a
    neighbour of 48 holding a block of 22 become 50 and 54). Each swapped stop keeps another
    near neighbour in its new list, and neither list becomes less contiguous
    (`_still_contiguous`). Returns whether a swap was applied."""
    label, size = state[0], state[1]
    lo, hi, tg = bounds
    nbl = np.where(nb >= 0, label[np.maximum(nb, 0)], -1)  # neighbours' lists
    in_g = np.flatnonzero(label == g)
    cands: list[tuple[float, float, int, int, int]] = []  # (dviol, dsq, s, t, h)
    for h in np.unique(nbl[in_g]).tolist():
        if h < 0 or h == g:
            continue
        s_all = in_g[np.any(nbl[in_g] == h, axis=1) & movable[in_g]]  # g's stops next to h
        t_all = np.flatnonzero((label == h) & np.any(nbl == g, axis=1) & movable)  # h's by g
        if not s_all.size or not t_all.size:
            continue
        diff = ww[t_all][None, :] - ww[s_all][:, None]  # g gains this, h loses it
        a0, b0 = size[g], size[h]
        a1, b1 = a0 + diff, b0 - diff
        dviol = (
            _violation(a1, lo[g], hi[g])
            + _violation(b1, lo[h], hi[h])
            - _violation(a0, lo[g], hi[g])
            - _violation(b0, lo[h], hi[h])
        )
        # both stops must keep a near neighbour in their new list besides each other
        s_h = (nbl[s_all] == h).sum(axis=1)[:, None] - (nb[s_all][:, :, None] == t_all).any(1)
        t_g = (nbl[t_all] == g).sum(axis=1)[None, :] - (nb[t_all][:, :, None] == s_all).any(1).T
        ok = (s_h >= 1) & (t_g >= 1) & (diff != 0) & (dviol < -1e-9)
        dsq = (a1 - tg[g]) ** 2 + (b1 - tg[h]) ** 2
        for i, j in zip(*np.nonzero(ok), strict=True):
            cands.append(
                (round(float(dviol[i, j]), 9), float(dsq[i, j]), int(s_all[i]), int(t_all[j]), h)
            )
    cands.sort()
    for _, _, s_, t_, h in cands[:tries]:
        before = label.copy()
        _move(s_, g, h, state, pts, ww)
        _move(t_, h, g, state, pts, ww)
        if _still_contiguous(label, before, pts):
            return True
        _move(s_, h, g, state, pts, ww)
        _move(t_, g, h, state, pts, ww)
    return False


def _still_contiguous(label: np.ndarray, before: np.ndarray, pts: np.ndarray) -> bool:
    """Whether every list changed since `before` is still about as contiguous: the longest
    edge of the minimum spanning tree of its stops (its loosest gap) has not grown past
    max(its gap before, _GAP_FLOOR_M). Guards the moves that shift many stops at once."""
    from geo.bounds import mst_gap

    diff = label != before
    for part in np.unique(np.concatenate([label[diff], before[diff]])).tolist():
        gaps = []
        for lab in (before, label):
            p = pts[lab == part]
            d = np.hypot(p[:, None, 0] - p[None, :, 0], p[:, None, 1] - p[None, :, 1])
            gaps.append(mst_gap(d))
        if gaps[1] > max(gaps[0], _GAP_FLOOR_M) + 1e-9:
            return False
    return True


def _recut_pair(g, state, nb, pts, ww, bounds, tried: set[tuple[int, ...]]) -> bool:
    """Cut list g and one neighbouring list again, as one group split in two by a straight
    line, so that both fit their size ranges. Single-stop moves cannot fix a list made of
    a few big blocks of flats (28 + 32 doors for lists of 50); a new dividing line between
    it and a neighbour can. Neighbours sharing the longest boundary are tried first.
    Returns whether a re-cut was applied."""
    label, size = state[0], state[1]
    lo, hi, tg = bounds
    adj = _part_adjacency(label, nb)
    for h, _links in sorted(adj.get(g, {}).items(), key=lambda kv: -kv[1]):
        u = np.flatnonzero((label == g) | (label == h))
        key = (g, h, *u.tolist())
        if key in tried:  # this pair, as it stands, was tried before
            continue
        tried.add(key)
        split = _split_two(pts[u], ww[u], (lo[g], hi[g], tg[g]), (lo[h], hi[h], tg[h]))
        if split is None:
            continue
        before = float(_violation(size[[g, h]], lo[[g, h]], hi[[g, h]]).sum())
        new_g = u[split]
        new_h = u[~split]
        sizes = np.array([ww[new_g].sum(), ww[new_h].sum()])
        if float(_violation(sizes, lo[[g, h]], hi[[g, h]]).sum()) >= before - 1e-9:
            continue
        saved = label.copy()
        for s_ in new_g[label[new_g] != g]:
            _move(int(s_), h, g, state, pts, ww)
        for s_ in new_h[label[new_h] != h]:
            _move(int(s_), g, h, state, pts, ww)
        if _still_contiguous(label, saved, pts):
            return True
        for s_ in np.flatnonzero(label != saved):
            _move(int(s_), int(label[s_]), int(saved[s_]), state, pts, ww)
    return False


def _split_two(
    pts: np.ndarray,
    ww: np.ndarray,
    a: tuple[float, float, float],
    b: tuple[float, float, float],
) -> np.ndarray | None:
    """Split points by a straight line into side A (returned mask) and side B, each within
    its (lo, hi) size range, as close to the planned sizes as possible and preferring lines
    across the principal axis (compact halves). None when no line fits both ranges."""
    if pts.shape[0] < 2:
        return None
    total = float(ww.sum())
    centre = (pts * ww[:, None]).sum(axis=0) / total
    c = pts - centre
    cov = (c * ww[:, None]).T @ c / total
    _vals, vecs = np.linalg.eigh(cov)
    base = float(np.arctan2(vecs[1, 1], vecs[0, 1]))
    per = max(total / 2.0, 1e-9)
    best: tuple[float, np.ndarray] | None = None
    for step in range(2 * _N_DIRECTIONS):  # both ways along each direction: A first or B
        ang = base + np.pi * step / _N_DIRECTIONS
        axis = np.array([np.cos(ang), np.sin(ang)])
        order = np.lexsort((c @ np.array([-axis[1], axis[0]]), c @ axis))
        first = np.cumsum(ww[order])[:-1]
        second = total - first
        ok = (first >= a[0] - 1e-9) & (first <= a[1] + 1e-9)
        ok &= (second >= b[0] - 1e-9) & (second <= b[1] + 1e-9)
        if not ok.any():
            continue
        err = np.where(ok, np.abs(first - a[2]) / per, np.inf)
        pos = int(np.argmin(err))
        turn = step % _N_DIRECTIONS
        score = float(err[pos]) + 0.02 * min(turn, _N_DIRECTIONS - turn)
        if best is None or score < best[0]:
            mask = np.zeros(pts.shape[0], dtype=bool)
            mask[order[: pos + 1]] = True
            best = (score, mask)
    return None if best is None else best[1]


def _move(s_, fr, to, state, pts, ww) -> None:
    label, size, count, sumxy = state
    label[s_] = to
    size[fr] -= ww[s_]
    size[to] += ww[s_]
    count[fr] -= 1
    count[to] += 1
    sumxy[fr] -= pts[s_]
    sumxy[to] += pts[s_]


def _consider(best, s_, fr, to, state, ww, pts, bounds):
    """Keep the better move: lower out-of-range total first, then sizes nearer their plan,
    then nearer the receiving list."""
    _label, size, count, sumxy = state
    lo, hi, tg = bounds
    a0, b0 = size[fr], size[to]
    a1, b1 = a0 - ww[s_], b0 + ww[s_]
    dviol = float(
        _violation(a1, lo[fr], hi[fr])
        + _violation(b1, lo[to], hi[to])
        - _violation(a0, lo[fr], hi[fr])
        - _violation(b0, lo[to], hi[to])
    )
    if dviol > 1e-9:
        return best
    dsq = float((a1 - tg[fr]) ** 2 + (b1 - tg[to]) ** 2 - (a0 - tg[fr]) ** 2 - (b0 - tg[to]) ** 2)
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
    where a region's size or a single block forces a list out of range (`size_exception`;
    at most one such list per region, besides big blocks).
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
