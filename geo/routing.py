"""Ordering the stops of one walk list: an open walking path over a distance matrix.

The open path is turned into a closed tour by adding a dummy node at distance 0 from
every stop. Tiny lists (<= 8 stops) are solved exactly. Otherwise fast-tsp (a compiled
local search; it solves up to 20 nodes exactly, which is fast only up to 16, so tours of
17-20 nodes are padded past it) runs for a few milliseconds and the result is polished
by 2-opt + Or-opt on the float distances; with a fixed start (or without fast-tsp) a numpy
iterated local search (2-opt + Or-opt best-improvement moves, double-bridge kicks) is used.
The answer is never worse than the best nearest-neighbour path.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from shapely.geometry import LineString

from geo.streets import NetworkPaths, StreetNetwork, network_paths, route_line_xy

try:  # fast-tsp: MIT-licensed C++ local search (2-opt/Or-opt/LK-style moves with kicks)
    import fast_tsp as _fast_tsp
except ImportError:  # pragma: no cover - fall back to the numpy search
    _fast_tsp = None

DEFAULT_TIME_BUDGET_S = 0.004
_FAST_TSP_MAX = 60000.0
_FAST_TSP_EXACT_MAX = 20  # fast-tsp solves tours of up to this many nodes exactly...
_FAST_TSP_EXACT_CHEAP = 16  # ...which takes a few milliseconds only up to this many
DEFAULT_MAX_KICKS = 60
_EPS = 1e-9


def path_length(dist: np.ndarray, order: Sequence[int]) -> float:
    """Length of the open path visiting `order` under `dist`."""
    o = np.asarray(order, dtype=np.int64)
    if o.size < 2:
        return 0.0
    return float(np.asarray(dist)[o[:-1], o[1:]].sum())


def nearest_neighbour_order(dist: np.ndarray, start: int | None = None) -> list[int]:
    """Nearest-neighbour open path; from `start`, or the best over all starts if None."""
    d = np.asarray(dist, dtype=float)
    n = d.shape[0]
    if n == 0:
        return []
    if n == 1:
        return [0]
    starts = np.arange(n) if start is None else np.array([start])
    s = starts.size
    visited = np.zeros((s, n), dtype=bool)
    cur = starts.copy()
    visited[np.arange(s), cur] = True
    paths = np.empty((s, n), dtype=np.int64)
    paths[:, 0] = cur
    total = np.zeros(s)
    big = np.inf
    for step in range(1, n):
        row = np.where(visited, big, d[cur])
        nxt = row.argmin(axis=1)
        total += row[np.arange(s), nxt]
        visited[np.arange(s), nxt] = True
        paths[:, step] = nxt
        cur = nxt
    best = int(np.argmin(total))
    return paths[best].tolist()


def _closed_matrix(dist: np.ndarray, start: int | None) -> np.ndarray:
    """Distance matrix with a dummy node appended (index n) that closes the open path."""
    n = dist.shape[0]
    m = np.zeros((n + 1, n + 1))
    m[:n, :n] = dist
    if start is not None:
        # Only `start` may be adjacent to the dummy for free: all others cost a constant
        # big M, which every tour pays exactly once (the other dummy edge).
        big = float(dist.max()) * (n + 1) + 1.0
        m[n, :n] = big
        m[:n, n] = big
        m[n, start] = 0.0
        m[start, n] = 0.0
    return m


class _TourSearch:
    """2-opt + Or-opt best-improvement local search on a closed tour (numpy)."""

    def __init__(self, d: np.ndarray):
        self.d = d
        self.m = d.shape[0]
        m = self.m
        ar = np.arange(m)
        self.ar = ar
        self.nxt = np.roll(ar, -1)
        i, j = np.meshgrid(ar, ar, indexing="ij")
        mask = j >= i + 2
        mask[0, m - 1] = False
        self.two_opt_mask = mask
        self.or_masks = {}
        for seg in (1, 2, 3):
            if seg > m - 3:
                continue
            # rows: insertion edge j; cols: segment start s. Invalid if (j - s + 1) mod m in [0, seg]
            off = (i - j + 1) % m  # i is row index (edge j), j is column (segment start s)
            self.or_masks[seg] = off > seg

    def cost(self, t: np.ndarray) -> float:
        return float(self.d[t, np.roll(t, -1)].sum())

    def best_two_opt(self, dt: np.ndarray, a: np.ndarray):
        nxt = self.nxt
        delta = dt + dt[np.ix_(nxt, nxt)] - a[:, None] - a[None, :]
        delta = np.where(self.two_opt_mask, delta, np.inf)
        k = int(np.argmin(delta))
        i, j = divmod(k, self.m)
        return float(delta[i, j]), i, j

    def best_or_opt(self, dt: np.ndarray, a: np.ndarray):
        m = self.m
        ar, nxt = self.ar, self.nxt
        best = (0.0, -1, -1, -1, False)
        for seg, mask in self.or_masks.items():
            s = ar
            e = (ar + seg - 1) % m
            p = (ar - 1) % m
            q = (ar + seg) % m
            gain = dt[p, s] + dt[e, q] - dt[p, q]
            ins_f = dt[:, s] + dt[np.ix_(nxt, e)] - a[:, None]
            ins_r = dt[:, e] + dt[np.ix_(nxt, s)] - a[:, None]
            rev = ins_r < ins_f
            ins = np.where(rev, ins_r, ins_f) - gain[None, :]
            ins = np.where(mask, ins, np.inf)
            k = int(np.argmin(ins))
            jj, ss = divmod(k, m)
            if ins[jj, ss] < best[0]:
                best = (float(ins[jj, ss]), seg, ss, jj, bool(rev[jj, ss]))
        return best

    def local_search(self, t: np.ndarray) -> np.ndarray:
        m = self.m
        if m < 4:
            return t
        d = self.d
        while True:
            dt = d[np.ix_(t, t)]
            a = dt[self.ar, self.nxt]
            d2, i, j = self.best_two_opt(dt, a)
            d3 = self.best_or_opt(dt, a) if self.or_masks else (0.0, -1, -1, -1, False)
            if d2 < -_EPS and d2 <= d3[0]:
                t = np.concatenate([t[: i + 1], t[i + 1 : j + 1][::-1], t[j + 1 :]])
            elif d3[0] < -_EPS:
                _, seg, s, jj, rev = d3
                r = np.roll(t, -s)
                segment = r[:seg]
                rest = r[seg:]
                node_j = t[jj]
                pos = int(np.flatnonzero(rest == node_j)[0])
                if rev:
                    segment = segment[::-1]
                t = np.concatenate([rest[: pos + 1], segment, rest[pos + 1 :]])
            else:
                return t


def _double_bridge(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Local double-bridge kick: swap two short adjacent segments somewhere in the tour."""
    m = t.size
    if m < 8:
        return rng.permutation(t)
    r = np.roll(t, -int(rng.integers(m)))
    max_len = max(2, min(m // 3, 12))
    l1 = int(rng.integers(1, max_len))
    l2 = int(rng.integers(1, max_len))
    l3 = int(rng.integers(1, max_len))
    if l1 + l2 + l3 >= m:
        l1, l2, l3 = 1, 1, 1
    a = r[:l1]
    b = r[l1 : l1 + l2]
    c = r[l1 + l2 : l1 + l2 + l3]
    rest = r[l1 + l2 + l3 :]
    return np.concatenate([a, c, b, rest])


def order_stops(
    dist: np.ndarray,
    start: int | None = None,
    time_budget_s: float = DEFAULT_TIME_BUDGET_S,
    max_kicks: int = DEFAULT_MAX_KICKS,
    seed: int = 0,
) -> list[int]:
    """Order stops as a short open walking path over `dist` (start anywhere, or at `start`).

    Never worse than the best nearest-neighbour path; typically within ~1% of optimal
    for 50-75 stops in a few tens of milliseconds.
    """
    d = np.asarray(dist, dtype=float)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError("dist must be a square matrix")
    n = d.shape[0]
    if n <= 1:
        return list(range(n))
    if n == 2:
        return [start, 1 - start] if start is not None else [0, 1]
    d = 0.5 * (d + d.T)
    if n <= 8:
        from geo.bounds import exact_open_path

        _, order = exact_open_path(d, start=start)
        return order
    init = nearest_neighbour_order(d, start)
    init_cost = path_length(d, init)
    candidates: list[list[int]] = [init]
    if start is None and _fast_tsp is not None:
        candidates.append(_fast_tsp_path(d, time_budget_s))
    else:
        candidates.append(_ils_path(d, init, start, time_budget_s, max_kicks, seed))
    best = min(candidates, key=lambda o: path_length(d, o))
    if path_length(d, best) > init_cost:
        best = init
    if start is not None and best[0] != start:
        best = best[::-1]
    return [int(x) for x in best]


def _fast_tsp_path(d: np.ndarray, time_budget_s: float) -> list[int]:
    """Open path via fast-tsp on the closed tour with a dummy node (integer distances).

    fast-tsp solves tours of up to 20 nodes exactly, by a dynamic programme that takes
    ~100 ms at 20 nodes (8 ms at 17): far over the budget. Tours of 17-20 nodes are padded
    to 21 with a chain of extra dummy nodes so that its time-boxed local search runs
    instead (it finds the optimum of such small tours within the budget, the float polish
    below tidies up). The chain is free to walk along and free to leave from its first
    node, but every other way in or out costs `big` (at least a whole open path), so the
    best tours walk the chain in one piece and pay `big` once: the open path is unchanged.
    """
    assert _fast_tsp is not None
    n = d.shape[0]
    pad = _FAST_TSP_EXACT_MAX + 1 - (n + 1) if n + 1 > _FAST_TSP_EXACT_CHEAP else 0
    size = n + 1 + max(pad, 0)
    m = np.zeros((size, size))
    m[:n, :n] = d
    if pad > 0:
        big = path_length(d, nearest_neighbour_order(d, 0)) + 1.0
        m[n + 1 :, :] = big
        m[:, n + 1 :] = big
        chain = np.arange(n, size)
        m[chain[:-1], chain[1:]] = 0.0
        m[chain[1:], chain[:-1]] = 0.0
        np.fill_diagonal(m, 0.0)
    top = float(m.max())
    scale = _FAST_TSP_MAX / top if top > 0 else 1.0
    mi = np.rint(m * scale).astype(np.int64)
    # fast-tsp's budget is wall-clock time; on a busy machine the search may get little
    # CPU in it. Search again (keeping the best tour) until it has had most of the budget
    # in CPU time, so quality does not collapse under load.
    as_list = mi.tolist()
    best_tour: list[int] | None = None
    best_cost = np.inf
    cpu_used = 0.0
    for _attempt in range(4):
        c0 = time.process_time()
        t = _fast_tsp.find_tour(as_list, duration_seconds=time_budget_s, max_threads=1)
        cpu_used += time.process_time() - c0
        c = float(mi[t, np.roll(t, -1)].sum())
        if c < best_cost:
            best_tour, best_cost = t, c
        if size <= _FAST_TSP_EXACT_MAX or cpu_used >= 0.75 * time_budget_s:
            break
    tour = np.asarray(best_tour, dtype=np.int64)
    # the open path is the stops in tour order after the run of dummy node(s)
    dummy = tour >= n
    run_starts = np.flatnonzero(dummy & ~np.roll(dummy, 1))
    if run_starts.size == 1:
        order = np.roll(tour, -int(run_starts[0]))[size - n :]
    else:  # the chain was split (never seen): leave the ordering to the polish below
        order = np.asarray(nearest_neighbour_order(d, 0), dtype=np.int64)
    # polish on the exact (float) distances: rounding can hide tiny improvements
    closed = np.zeros((n + 1, n + 1))
    closed[:n, :n] = d
    polished = _TourSearch(closed).local_search(np.concatenate([[n], order]))
    p = int(np.flatnonzero(polished == n)[0])
    return np.concatenate([polished[p + 1 :], polished[:p]]).tolist()


def _ils_path(
    d: np.ndarray,
    init: list[int],
    start: int | None,
    time_budget_s: float,
    max_kicks: int,
    seed: int,
) -> list[int]:
    """Open path by 2-opt + Or-opt iterated local search in numpy (used for a fixed start)."""
    n = d.shape[0]
    closed = _closed_matrix(d, start)
    m = n + 1
    tour = np.array([n, *init], dtype=np.int64)
    search = _TourSearch(closed)
    tour = search.local_search(tour)
    best = tour
    best_cost = search.cost(tour)
    rng = np.random.default_rng(seed)
    deadline = time.perf_counter() + max(time_budget_s, 0.01)
    kicks = 0
    stale = 0
    while kicks < max_kicks and time.perf_counter() < deadline and m >= 8:
        cand = search.local_search(_double_bridge(best, rng))
        c = search.cost(cand)
        kicks += 1
        if c < best_cost - _EPS:
            best, best_cost = cand, c
            stale = 0
        else:
            stale += 1
            if stale >= max(20, max_kicks // 2):
                break
    pos = int(np.flatnonzero(best == n)[0])
    order = np.concatenate([best[pos + 1 :], best[:pos]]).tolist()
    if start is not None and order[0] != start:
        order = order[::-1]
    return [int(x) for x in order]


def route_geometry(network: StreetNetwork | None, ordered_points_xy: np.ndarray) -> LineString:
    """EPSG:27700 LineString through ordered points: along streets if a network is given."""
    xy = np.asarray(ordered_points_xy, dtype=float).reshape(-1, 2)
    order = list(range(xy.shape[0]))
    if network is None or xy.shape[0] < 2:
        return route_line_xy(None, None, xy, order)
    paths: NetworkPaths = network_paths(network, xy)
    return route_line_xy(network, paths, xy, order)


def length_m(dist: np.ndarray, order: Sequence[int]) -> float:
    """Walking length in metres of the ordered path under `dist`."""
    return path_length(dist, order)


def estimated_minutes(
    length_metres: float,
    doors: int,
    minutes_per_door: float = 1.5,
    walk_speed_m_per_min: float = 80.0,
) -> float:
    """Time for a list: walking at `walk_speed_m_per_min` plus `minutes_per_door` at each door."""
    return float(length_metres) / walk_speed_m_per_min + doors * minutes_per_door


__all__ = [
    "estimated_minutes",
    "length_m",
    "nearest_neighbour_order",
    "order_stops",
    "path_length",
    "route_geometry",
]
