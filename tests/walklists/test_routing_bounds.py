"""Route ordering against exact optima, nearest neighbour and the lower bounds."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from geo.bounds import exact_open_path, held_karp_lower_bound, mst_gap, mst_length, ortools_path
from geo.routing import estimated_minutes, nearest_neighbour_order, order_stops, path_length


def _euclid(n: int, seed: int, spread: float = 500.0) -> np.ndarray:
    p = np.random.default_rng(seed).uniform(0, spread, (n, 2))
    return np.hypot(p[:, None, 0] - p[None, :, 0], p[:, None, 1] - p[None, :, 1])


def _brute(d: np.ndarray) -> float:
    n = d.shape[0]
    return min(path_length(d, p) for p in itertools.permutations(range(n)))


@pytest.mark.parametrize("seed", range(6))
def test_exact_dp_matches_brute_force(seed: int) -> None:
    d = _euclid(7, seed)
    cost, order = exact_open_path(d)
    assert sorted(order) == list(range(7))
    assert cost == pytest.approx(path_length(d, order))
    assert cost == pytest.approx(_brute(d))


@pytest.mark.parametrize("seed", range(12))
def test_heuristic_equals_exact_on_tiny_instances(seed: int) -> None:
    n = 4 + seed % 8  # 4..11 stops
    d = _euclid(n, 100 + seed)
    opt, _ = exact_open_path(d)
    order = order_stops(d)
    assert sorted(order) == list(range(n))
    assert path_length(d, order) == pytest.approx(opt, rel=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_bounds_never_exceed_the_optimum(seed: int) -> None:
    n = 5 + seed % 7
    d = _euclid(n, 200 + seed)
    opt, _ = exact_open_path(d)
    mst = mst_length(d)
    hk = held_karp_lower_bound(d)
    assert mst <= hk + 1e-9
    assert hk <= opt + 1e-6
    assert hk >= 0.9 * opt  # and it is a useful bound


def test_fixed_start_is_respected_and_not_worse_than_nearest_neighbour() -> None:
    d = _euclid(30, 5)
    for start in (0, 7, 29):
        order = order_stops(d, start=start)
        assert order[0] == start and sorted(order) == list(range(30))
        assert path_length(d, order) <= path_length(d, nearest_neighbour_order(d, start)) + 1e-9


@pytest.mark.parametrize("seed", range(5))
def test_route_never_longer_than_nearest_neighbour_and_fast(seed: int) -> None:
    d = _euclid(60, 300 + seed)
    t0 = time.perf_counter()
    order = order_stops(d)
    elapsed = time.perf_counter() - t0
    assert sorted(order) == list(range(60))
    length = path_length(d, order)
    assert length <= path_length(d, nearest_neighbour_order(d)) + 1e-9
    assert length >= mst_length(d) - 1e-9
    assert elapsed < 0.1
    # near-optimal: within 4% of the Held-Karp bound
    assert length <= 1.04 * held_karp_lower_bound(d, upper_bound=length)


@pytest.mark.parametrize("n", [16, 17, 18, 19])
def test_lists_of_16_to_19_stops_are_optimal_and_fast(n: int) -> None:
    """fast-tsp's exact solver takes ~100 ms for 19 stops + the dummy node; padded, its
    local search finds the same optimum within the routing budget."""
    fast_tsp = pytest.importorskip("fast_tsp")
    d = _euclid(n, 400 + n)
    closed = np.zeros((n + 1, n + 1))
    closed[:n, :n] = d
    tour = fast_tsp.solve_tsp_exact(np.rint(closed * 60000 / closed.max()).astype(int).tolist())
    pos = tour.index(n)
    opt = path_length(d, tour[pos + 1 :] + tour[:pos])
    order_stops(d)  # warm up
    t0 = time.perf_counter()
    order = order_stops(d)
    elapsed = time.perf_counter() - t0
    assert sorted(order) == list(range(n))
    assert path_length(d, order) <= opt * (1 + 1e-6)
    assert elapsed < 0.05


def test_ortools_reference_path_is_a_valid_permutation() -> None:
    d = _euclid(12, 9)
    order = ortools_path(d, seconds=0.2)
    assert sorted(order) == list(range(12))
    opt, _ = exact_open_path(d)
    assert path_length(d, order) >= opt - 1e-6


def test_degenerate_sizes() -> None:
    assert order_stops(np.zeros((0, 0))) == []
    assert order_stops(np.zeros((1, 1))) == [0]
    assert sorted(order_stops(np.array([[0.0, 3.0], [3.0, 0.0]]))) == [0, 1]
    assert mst_gap(np.array([[0.0, 5.0], [5.0, 0.0]])) == 5.0
    assert estimated_minutes(800.0, 10) == pytest.approx(10 + 15)
