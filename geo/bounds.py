"""Lower bounds and reference solvers for open walking paths, to measure route quality.

- `mst_length`: minimum spanning tree (a spanning path is a spanning tree, so MST <= optimum).
- `held_karp_lower_bound`: the Held-Karp 1-tree Lagrangian bound with subgradient
  optimisation, on the closed tour over stops + a dummy node at distance 0 from all.
- `exact_open_path`: Held-Karp dynamic programme, exact, for tiny instances (n <= 12).
- `ortools_path`: OR-Tools routing (guided local search) given a time limit.
"""

from __future__ import annotations

import numpy as np


def _prim(d: np.ndarray, skip: int | None = None) -> tuple[float, np.ndarray]:
    """MST weight and node degrees by dense Prim (O(n^2), numpy); `skip` excludes a node."""
    n = d.shape[0]
    nodes = np.arange(n) if skip is None else np.delete(np.arange(n), skip)
    k = nodes.size
    deg = np.zeros(n, dtype=np.int64)
    if k <= 1:
        return 0.0, deg
    sub = d[np.ix_(nodes, nodes)]
    in_tree = np.zeros(k, dtype=bool)
    in_tree[0] = True
    best = sub[0].copy()
    parent = np.zeros(k, dtype=np.int64)
    best[0] = np.inf
    total = 0.0
    for _ in range(k - 1):
        cand = np.where(in_tree, np.inf, best)
        j = int(np.argmin(cand))
        total += float(cand[j])
        in_tree[j] = True
        deg[nodes[j]] += 1
        deg[nodes[parent[j]]] += 1
        upd = (sub[j] < best) & ~in_tree
        best = np.where(upd, sub[j], best)
        parent = np.where(upd, j, parent)
    return total, deg


def mst_length(dist: np.ndarray) -> float:
    """Minimum spanning tree weight: a lower bound on the shortest open path."""
    d = np.asarray(dist, dtype=float)
    d = np.minimum(d, d.T)
    return _prim(d)[0]


def mst_gap(dist: np.ndarray) -> float:
    """Longest edge of the minimum spanning tree: how far apart the loosest part of a set is."""
    d = np.asarray(dist, dtype=float)
    n = d.shape[0]
    if n < 2:
        return 0.0
    in_tree = np.zeros(n, dtype=bool)
    in_tree[0] = True
    best = d[0].copy()
    gap = 0.0
    for _ in range(n - 1):
        cand = np.where(in_tree, np.inf, best)
        j = int(np.argmin(cand))
        gap = max(gap, float(cand[j]))
        in_tree[j] = True
        best = np.minimum(best, d[j])
    return gap


def _one_tree(d: np.ndarray, special: int) -> tuple[float, np.ndarray]:
    w, deg = _prim(d, skip=special)
    row = np.delete(d[special], special)
    others = np.delete(np.arange(d.shape[0]), special)
    two = np.argpartition(row, 1)[:2]
    w += float(row[two].sum())
    deg[special] += 2
    deg[others[two]] += 1
    return w, deg


def held_karp_lower_bound(
    dist: np.ndarray, upper_bound: float | None = None, iterations: int = 300
) -> float:
    """Held-Karp (1-tree, Lagrangian) lower bound on the shortest open path over `dist`.

    The open path is the closed tour over the stops plus a dummy node at distance 0 from
    all of them. Subgradient optimisation with Held-Wolfe-Crowder step sizes; the result is
    never above the optimum and is also never below the MST bound.
    """
    d0 = np.asarray(dist, dtype=float)
    d0 = np.minimum(d0, d0.T)
    n = d0.shape[0]
    if n <= 1:
        return 0.0
    if n == 2:
        return float(d0[0, 1])
    mst = mst_length(d0)
    m = n + 1
    d = np.zeros((m, m))
    d[:n, :n] = d0
    if upper_bound is None:
        from geo.routing import order_stops, path_length

        upper_bound = path_length(d0, order_stops(d0))
    pi = np.zeros(m)
    best = -np.inf
    lam = 2.0
    stale = 0
    special = n  # the dummy node
    for _ in range(iterations):
        dp = d + pi[:, None] + pi[None, :]
        np.fill_diagonal(dp, 0.0)
        w, deg = _one_tree(dp, special)
        bound = w - 2.0 * pi.sum()
        if bound > best + 1e-9:
            best = bound
            stale = 0
        else:
            stale += 1
            if stale >= 10:
                lam *= 0.5
                stale = 0
        g = deg - 2
        gg = float((g * g).sum())
        if gg == 0:
            break  # the 1-tree is a tour: the bound is optimal
        if lam < 1e-5 or upper_bound - bound <= 1e-9 * max(1.0, upper_bound):
            break
        step = lam * (upper_bound - bound) / gg
        pi = pi + step * g
    return float(max(best, mst))


def exact_open_path(dist: np.ndarray, start: int | None = None) -> tuple[float, list[int]]:
    """Shortest open path by Held-Karp dynamic programming; exact, for n <= 12 (tests, tiny lists)."""
    d = np.asarray(dist, dtype=float)
    n = d.shape[0]
    if n > 13:
        raise ValueError("exact_open_path is exponential; use n <= 13")
    if n == 0:
        return 0.0, []
    if n == 1:
        return 0.0, [0]
    full = 1 << n
    dp = np.full((full, n), np.inf)
    parent = np.full((full, n), -1, dtype=np.int64)
    if start is None:
        for j in range(n):
            dp[1 << j, j] = 0.0
    else:
        dp[1 << start, start] = 0.0
    bits = np.arange(n)
    for mask in range(1, full):
        row = dp[mask]
        if not np.isfinite(row).any():
            continue
        inmask = ((mask >> bits) & 1).astype(bool)
        # extend to every j not in mask
        cand = row[:, None] + d  # (from i, to j)
        best_i = np.argmin(cand, axis=0)
        best_v = cand[best_i, bits]
        for j in np.flatnonzero(~inmask):
            nm = mask | (1 << int(j))
            if best_v[j] < dp[nm, j]:
                dp[nm, j] = best_v[j]
                parent[nm, j] = best_i[j]
    last = int(np.argmin(dp[full - 1]))
    cost = float(dp[full - 1, last])
    order = [last]
    mask = full - 1
    while parent[mask, order[-1]] >= 0:
        p = int(parent[mask, order[-1]])
        mask ^= 1 << order[-1]
        order.append(p)
    order.reverse()
    return cost, order


def ortools_path(
    dist: np.ndarray, seconds: float = 1.0, start: int | None = None, scale: float = 100.0
) -> list[int]:
    """Open path from OR-Tools routing (guided local search for `seconds`), via a dummy depot.

    The depot is an extra node with zero-cost arcs to and from every stop, so the path may
    start and end anywhere (unless `start` is given). Costs are scaled by `scale` (metres
    to centimetres by default) and rounded to integers, as OR-Tools requires, and handed
    over as a matrix (evaluated natively, not through a Python callback, so the solver gets
    the whole time limit for its search).
    """
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    d = np.asarray(dist, dtype=float)
    n = d.shape[0]
    if n <= 2:
        return list(range(n)) if start in (None, 0) else [start, 1 - start]
    m = n + 1
    full = np.zeros((m, m), dtype=np.int64)
    full[:n, :n] = np.rint(d * scale).astype(np.int64)
    if start is not None:
        big = int(full.max()) * m + 1
        full[n, :n] = big
        full[n, start] = 0
        # returning to the depot is free from anywhere (open end)
    manager = pywrapcp.RoutingIndexManager(m, 1, n)
    routing = pywrapcp.RoutingModel(manager)
    transit = routing.RegisterTransitMatrix(full.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(transit)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(max(1, int(seconds * 1000)))
    sol = routing.SolveWithParameters(params)
    if sol is None:
        raise RuntimeError("OR-Tools found no solution")
    idx = routing.Start(0)
    order: list[int] = []
    idx = sol.Value(routing.NextVar(idx))
    while not routing.IsEnd(idx):
        order.append(manager.IndexToNode(idx))
        idx = sol.Value(routing.NextVar(idx))
    return order


__all__ = ["exact_open_path", "held_karp_lower_bound", "mst_gap", "mst_length", "ortools_path"]
