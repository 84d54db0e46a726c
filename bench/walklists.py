"""Benchmark walk-list cutting and routing on Camden (OSM) and a synthetic 40,000-door town.

Run: `python -m bench.walklists [--sample-hk 100] [--sample-ortools 20] [--only camden|synthetic_40k]`,
or `python -m bench.walklists --national [--doors 1000000] [--partition-doors 10000] [--workers 1,2]`
for the national cut on Dask (see `national`).
Progress goes to stderr; the last stdout line is one JSON object with the metrics per dataset.

Sizes. Some lists are out of +-10% of the requested size by force, and the cutter says so
(`size_exception`): a region between major roads with fewer doors than a list
("small_region"); a region whose doors no number of lists can share within +-10%, e.g. 129
doors for lists of 50, where exactly one list per region takes what is left over and the
others are within range ("indivisible_region"); a single block of flats bigger than a list
("big_block"). `size_exceptions` counts these (broken down in `small_region_lists`,
`indivisible_region_lists`, `big_block_lists`; `size_exception_max_dev_pct` is the worst of
them). `size_spread_pct` (largest deviation from the requested size), `size_dev_p95_pct`
and `lists_within_10pct_pct` are over every other list, and `size_misses` counts those of
them outside +-10%: a miss of the cutter, not excused.

Routes. Ratios compare each list's route cost (walked metres + crossing penalties, the
cost the ordering minimises) with the same list's bounds and reference solvers.
`route_vs_ortools_mean` is over OR-Tools' routing solver (open path: a dummy depot with
zero-cost arcs to and from every stop; the same cost matrix in centimetres; guided local
search for `--ortools-seconds`). `route_vs_ortools_floor_mean` is, over the same lists,
the Held-Karp lower bound divided by OR-Tools' cost: no route can be shorter than the
bound, so no solver's ratio against this OR-Tools run can be below that floor.

Street layer (`--only street_layer`, run by default with the Camden data): Camden's OSM
streets imported into a fresh database (SQLite by default, `--layer-db postgresql` for
PostgreSQL on 127.0.0.1:5432) through our import, then `GET
/api/campaigns/{id}/streets.geojson?bbox=...` of the whole borough over HTTP to the real app
in process, signed in as an organiser. `street_layer_view_ms`: median of `--layer-views`
uncached borough views (each bbox moved by a micro-degree, so the answer cache misses);
`street_layer_cached_ms`: the same view again (cache hit); bytes as sent and gzipped
(level 6, what a proxy would send: the app itself does not compress). Baseline in the same
run: the same street rows written as GeoJSON by `GeoDataFrame.to_json()` without
simplification (what a plain endpoint would serve). Goal: under 200 ms a view, under 300 KB gzipped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
from shapely.geometry import LineString

from geo.bounds import held_karp_lower_bound, mst_length, ortools_path
from geo.routing import nearest_neighbour_order, path_length
from geo.streets import (
    StreetNetwork,
    bng_to_lonlat,
    lonlat_to_bng,
    read_street_network,
    street_network_from_lines,
)
from geo.walklists import WalkListPlan, cut_walk_lists, stop_cost_matrix

ORIGIN_X, ORIGIN_Y = 520000.0, 175000.0  # somewhere in west London, EPSG:27700
ORIGIN = np.array([ORIGIN_X, ORIGIN_Y])


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def synthetic_town(
    doors: int = 40000, seed: int = 0, size_m: float = 3000.0
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A grid town (WGS84): streets (name, highway, geometry) and stops (stop_id, doors,
    street, house_number, geometry) with exactly `doors` doors.

    Streets every 100 m (north-south) and 80 m (east-west); every 8th north-south street is
    a primary road, every 10th east-west one a secondary road (barriers), every 4th
    east-west one tertiary (busy). Houses every 12 m on both sides, 8 m from the centre
    line; about 3% of them are blocks of flats with 6-40 doors.
    """
    rng = np.random.default_rng(seed)
    xs = np.arange(0.0, size_m + 1e-6, 100.0)
    ys = np.arange(0.0, size_m + 1e-6, 80.0)
    lines: list[tuple[str, str, np.ndarray]] = []
    for i, x in enumerate(xs):
        hw = "primary" if i % 8 == 4 else "residential"
        lines.append((f"North Street {i}", hw, np.array([[x, ys[0]], [x, ys[-1]]])))
    for j, y in enumerate(ys):
        hw = "secondary" if j % 10 == 5 else ("tertiary" if j % 4 == 2 else "residential")
        lines.append((f"East Road {j}", hw, np.array([[xs[0], y], [xs[-1], y]])))
    # split each street at every crossing so they share nodes
    seg_rows: list[tuple[str, str, np.ndarray]] = []
    for name, hw, c in lines:
        if c[0, 0] == c[1, 0]:  # north-south
            cuts = ys
            for a, b in itertools.pairwise(cuts):
                seg_rows.append((name, hw, np.array([[c[0, 0], a], [c[0, 0], b]])))
        else:
            cuts = xs
            for a, b in itertools.pairwise(cuts):
                seg_rows.append((name, hw, np.array([[a, c[0, 1]], [b, c[0, 1]]])))
    street_geoms = [LineString(bng_to_lonlat(np.asarray(c) + ORIGIN)) for _, _, c in seg_rows]
    streets = gpd.GeoDataFrame(
        {"name": [r[0] for r in seg_rows], "highway": [r[1] for r in seg_rows]},
        geometry=street_geoms,
        crs="EPSG:4326",
    )
    # houses
    pts: list[tuple[float, float]] = []
    st: list[str] = []
    num: list[str] = []
    for name, _hw, c in lines:
        vertical = c[0, 0] == c[1, 0]
        cross = ys if vertical else xs
        along = np.arange(6.0, size_m, 12.0)
        near = np.min(np.abs(along[:, None] - cross[None, :]), axis=1) < 12.0
        along = along[~near]
        for side, off in ((0, -8.0), (1, 8.0)):
            for k, t in enumerate(along):
                if vertical:
                    pts.append((c[0, 0] + off, t))
                else:
                    pts.append((t, c[0, 1] + off))
                st.append(name)
                num.append(str(2 * k + 1 + side))
    xy = np.asarray(pts)
    n = len(xy)
    d = np.ones(n, dtype=np.int64)
    flats = rng.random(n) < 0.03
    d[flats] = rng.integers(6, 41, flats.sum())
    # trim from the east edge to the requested number of doors
    order = np.argsort(-xy[:, 0], kind="stable")
    excess = int(d.sum()) - doors
    if excess < 0:
        raise ValueError("town too small for the requested doors; raise size_m")
    drop: list[int] = []
    for i in order:
        if excess <= 0:
            break
        if d[i] <= excess:
            drop.append(int(i))
            excess -= int(d[i])
        elif d[i] > 1:
            d[i] -= excess
            excess = 0
    keep = np.setdiff1d(np.arange(n), np.asarray(drop, dtype=np.int64))
    assert int(d[keep].sum()) == doors
    lonlat = bng_to_lonlat(xy[keep] + ORIGIN)
    stops = gpd.GeoDataFrame(
        {
            "stop_id": [f"s{i}" for i in range(len(keep))],
            "doors": d[keep],
            "street": [st[i] for i in keep],
            "house_number": [num[i] for i in keep],
        },
        geometry=gpd.points_from_xy(lonlat[:, 0], lonlat[:, 1]),
        crs="EPSG:4326",
    )
    return streets, stops


def data_dir() -> Path:
    """Shared real-data folder: $CANVASS_DATA_DIR or ../shared/data beside the repo."""
    env = os.environ.get("CANVASS_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def read_osm_addresses(pbf_path: str | Path) -> gpd.GeoDataFrame:
    """Addresses (nodes, and building ways by centroid) with addr:housenumber, as stops.

    building:flats, when tagged, gives the number of doors; otherwise one door.
    """
    import osmium

    rows: list[tuple[str, float, float, str, str, int]] = []
    fp = (
        osmium.FileProcessor(str(pbf_path))
        .with_locations()
        .with_filter(osmium.filter.KeyFilter("addr:housenumber"))
    )
    for obj in fp:
        tags = obj.tags
        hn = tags.get("addr:housenumber")
        street = tags.get("addr:street", "")
        flats = tags.get("building:flats")
        try:
            doors = max(1, int(flats)) if flats else 1
        except ValueError:
            doors = 1
        if obj.is_node():
            if not obj.location.valid():
                continue
            rows.append((f"n{obj.id}", obj.location.lon, obj.location.lat, street, hn, doors))
        elif obj.is_way():
            c = [(n.lon, n.lat) for n in obj.nodes if n.location.valid()]
            if not c:
                continue
            a = np.asarray(c)
            rows.append(
                (f"w{obj.id}", float(a[:, 0].mean()), float(a[:, 1].mean()), street, hn, doors)
            )
    df = gpd.GeoDataFrame(
        {
            "stop_id": [r[0] for r in rows],
            "street": [r[3] for r in rows],
            "house_number": [r[4] for r in rows],
            "doors": np.asarray([r[5] for r in rows], dtype=np.int64),
        },
        geometry=gpd.points_from_xy([r[1] for r in rows], [r[2] for r in rows]),
        crs="EPSG:4326",
    )
    return df


def camden_inputs() -> tuple[StreetNetwork, gpd.GeoDataFrame]:
    """Camden street network and the OSM addresses inside the borough's wards."""
    base = data_dir() / "camden"
    net = read_street_network(base / "osm" / "camden.osm.pbf")
    stops = read_osm_addresses(base / "osm" / "camden.osm.pbf")
    wards = gpd.read_file(base / "electoral" / "wards_by_lad_E09000007.geojson").to_crs("EPSG:4326")
    borough = wards.union_all()
    stops = stops[stops.within(borough)].reset_index(drop=True)
    return net, stops


def evaluate(
    plans: list[WalkListPlan],
    stops: gpd.GeoDataFrame,
    network: StreetNetwork | None,
    target: int,
    cut_s: float,
    sample_hk: int,
    sample_ortools: int,
    ortools_seconds: float,
    seed: int = 0,
) -> dict[str, Any]:
    """Quality metrics for a set of plans (see module docstring)."""
    xy_all = lonlat_to_bng(np.column_stack([stops.geometry.x, stops.geometry.y]))
    sizes = np.array([p.size for p in plans])
    normal = np.array([p.size_exception is None for p in plans])
    dev = np.abs(sizes[normal] - target) / target * 100
    spread = float(dev.max()) if dev.size else 0.0
    exc_dev = np.abs(sizes[~normal] - target) / target * 100
    rng = np.random.default_rng(seed)
    routable = [i for i, p in enumerate(plans) if len(p.stop_ids) >= 3]
    mst_r, nn_r, times = [], [], []
    hk_idx = set(rng.choice(routable, size=min(sample_hk, len(routable)), replace=False).tolist())
    or_idx = set(
        rng.choice(routable, size=min(sample_ortools, len(routable)), replace=False).tolist()
    )
    hk_r, or_r, or_floor, or_same = [], [], [], []
    or_same_failed = 0
    for n_done, i in enumerate(routable, start=1):
        p = plans[i]
        xy = xy_all[p.stop_index]
        t0 = time.perf_counter()
        costs = stop_cost_matrix(network, xy)
        from geo.routing import order_stops

        order = order_stops(costs.cost)
        times.append((time.perf_counter() - t0) * 1000)
        # the plan's own order is identity over p.stop_index
        ours = path_length(costs.cost, list(range(len(xy))))
        mst_r.append(ours / max(mst_length(costs.cost), 1e-9))
        nn_r.append(ours / max(path_length(costs.cost, nearest_neighbour_order(costs.cost)), 1e-9))
        hk = None
        if i in hk_idx or i in or_idx:
            hk = held_karp_lower_bound(costs.cost, upper_bound=ours, iterations=1000)
        if i in hk_idx:
            hk_r.append(ours / max(hk, 1e-9))
        if i in or_idx:
            oo = ortools_path(costs.cost, seconds=ortools_seconds)
            or_cost = max(path_length(costs.cost, oo), 1e-9)
            or_r.append(ours / or_cost)
            or_floor.append(hk / or_cost)
            # OR-Tools given the same time our ordering took on this list
            same = max(0.001, times[-1] / 1000.0)
            try:
                oo = ortools_path(costs.cost, seconds=same)
                or_same.append(ours / max(path_length(costs.cost, oo), 1e-9))
            except RuntimeError:  # no first solution within that time
                or_same_failed += 1
        if n_done % 100 == 0:
            _log(f"  evaluated {n_done}/{len(routable)} lists")
        del order
    crossings = int(sum(p.major_road_crossings for p in plans))
    return {
        "doors": int(stops["doors"].sum()),
        "stops": len(stops),
        "lists": len(plans),
        "undersized_lists": int(sum(p.undersized for p in plans)),
        "oversized_lists": int(sum(p.oversized for p in plans)),
        "size_exceptions": int((~normal).sum()),
        "size_misses": int((dev > 10.0 + 1e-9).sum()),
        "size_exception_max_dev_pct": round(float(exc_dev.max()), 2) if exc_dev.size else None,
        "small_region_lists": int(sum(p.size_exception == "small_region" for p in plans)),
        "big_block_lists": int(sum(p.size_exception == "big_block" for p in plans)),
        "indivisible_region_lists": int(
            sum(p.size_exception == "indivisible_region" for p in plans)
        ),
        "lists_within_10pct_pct": round(100.0 * float(np.mean(dev <= 10.0 + 1e-9)), 2)
        if dev.size
        else None,
        "size_dev_p95_pct": round(float(np.percentile(dev, 95)), 2) if dev.size else None,
        "cut_route_s": round(cut_s, 2),
        "size_spread_pct": round(spread, 2),
        "major_road_crossings": crossings,
        "route_vs_mst_mean": round(float(np.mean(mst_r)), 4) if mst_r else None,
        "route_vs_heldkarp_mean": round(float(np.mean(hk_r)), 4) if hk_r else None,
        "route_vs_heldkarp_p95": round(float(np.percentile(hk_r, 95)), 4) if hk_r else None,
        "heldkarp_sample": len(hk_r),
        "route_vs_ortools_mean": round(float(np.mean(or_r)), 4) if or_r else None,
        "route_vs_ortools_floor_mean": round(float(np.mean(or_floor)), 4) if or_floor else None,
        "ortools_sample": len(or_r),
        "route_vs_ortools_same_time_mean": round(float(np.mean(or_same)), 4) if or_same else None,
        "ortools_same_time_no_solution": or_same_failed,
        "ortools_seconds": ortools_seconds,
        "route_vs_nearest_neighbour_mean": round(float(np.mean(nn_r)), 4) if nn_r else None,
        "route_p95_ms": round(float(np.percentile(times, 95)), 2) if times else None,
        "route_mean_stops": round(float(np.mean([len(plans[i].stop_ids) for i in routable])), 1),
    }


def _progress(label: str) -> Callable[[int, int], None]:
    last = [0.0]

    def cb(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 2.0 or done == total:
            last[0] = now
            _log(f"  {label}: routed {done}/{total} lists")

    return cb


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Cut, route and evaluate each dataset; returns {dataset: metrics}."""
    out: dict[str, Any] = {}
    if args.only in (None, "camden"):
        if (data_dir() / "camden" / "osm" / "camden.osm.pbf").exists():
            _log("camden: reading streets and addresses")
            t0 = time.perf_counter()
            net, stops = camden_inputs()
            _log(
                f"camden: {len(stops)} stops, {int(stops['doors'].sum())} doors, "
                f"{net.n_edges} edges, {len(net.regions)} regions ({time.perf_counter() - t0:.1f}s)"
            )
            t0 = time.perf_counter()
            plans = cut_walk_lists(stops, args.target, network=net, progress=_progress("camden"))
            cut_s = time.perf_counter() - t0
            _log(f"camden: {len(plans)} lists in {cut_s:.1f}s; evaluating")
            out["camden"] = evaluate(
                plans,
                stops,
                net,
                args.target,
                cut_s,
                args.sample_hk,
                args.sample_ortools,
                args.ortools_seconds,
            )
        else:
            _log("camden: data missing, skipped")
            out["camden"] = None
    if args.only in (None, "synthetic_40k"):
        _log("synthetic_40k: building the town")
        streets, stops = synthetic_town(40000)
        net = street_network_from_lines(streets)
        t0 = time.perf_counter()
        plans = cut_walk_lists(stops, args.target, network=net, progress=_progress("synthetic_40k"))
        cut_s = time.perf_counter() - t0
        _log(f"synthetic_40k: {len(plans)} lists in {cut_s:.1f}s; evaluating")
        out["synthetic_40k"] = evaluate(
            plans,
            stops,
            net,
            args.target,
            cut_s,
            args.sample_hk,
            args.sample_ortools,
            args.ortools_seconds,
        )
    return out


async def _street_layer_bench(url: str, pbf: Path, views: int) -> dict[str, Any]:
    """Import Camden's streets into the database at `url`, then time borough views of the street layer over HTTP (see the module docstring)."""
    import asyncio
    import gzip
    import logging
    import statistics

    import shapely
    from litestar.testing import AsyncTestClient
    from sqlalchemy import func, select

    from server.accounts.security import hash_password
    from server.app import create_app
    from server.db.migrate import upgrade_database
    from server.db.models import Campaign, Membership, Role, Street, User
    from server.db.session import create_engine_for, create_sessionmaker
    from server.geography.services import import_streets
    from server.phone.layers import MAX_STREETS
    from server.settings import load_settings

    logging.getLogger("httpx").setLevel(logging.WARNING)
    await asyncio.to_thread(upgrade_database, url)
    engine = create_engine_for(url)
    sm = create_sessionmaker(engine)
    password = "bench-password-1234"
    async with sm() as session:
        campaign = Campaign(name="Camden streets", slug="camden-streets")
        user = User(email="organiser@bench.invalid", display_name="Bench organiser", password_hash=hash_password(password))
        session.add_all([campaign, user])
        await session.flush()
        session.add(Membership(user_id=user.id, campaign_id=campaign.id, role=Role.organiser))
        t0 = time.perf_counter()
        report = await import_streets(session, campaign.id, pbf)
        await session.commit()
        import_s = time.perf_counter() - t0
        cid = campaign.id
        min_lon, min_lat, max_lon, max_lat = (await session.execute(
            select(func.min(Street.min_lon), func.min(Street.min_lat), func.max(Street.max_lon), func.max(Street.max_lat)).where(Street.campaign_id == cid)
        )).one()
    _log(f"street_layer: {report.rows_written} streets imported in {import_s:.1f}s; borough {max_lon - min_lon:.3f} x {max_lat - min_lat:.3f} degrees")

    def bbox(shift: int) -> str:
        d = shift * 1e-6
        return f"{min_lon - d:.7f},{min_lat - d:.7f},{max_lon + d:.7f},{max_lat + d:.7f}"

    settings = load_settings(environ={}, database_url=url, secret_key="bench-secret-key-" + "x" * 40, auth_rate_per_minute=10_000)
    cold, warm = [], []
    body = b""
    async with AsyncTestClient(app=create_app(settings)) as http:
        login = await http.post("/api/auth/login", json={"email": "organiser@bench.invalid", "password": password})
        headers = {"authorization": f"Bearer {login.json()['access_token']}"}
        await http.get(f"/api/campaigns/{cid}/streets.geojson", params={"bbox": bbox(views + 10)}, headers=headers)  # warm-up: connections, imports
        for n in range(views):
            t0 = time.perf_counter()
            response = await http.get(f"/api/campaigns/{cid}/streets.geojson", params={"bbox": bbox(n + 1)}, headers=headers)
            cold.append(time.perf_counter() - t0)
            assert response.status_code == 200, response.text
            body = response.content
        for _ in range(views):
            t0 = time.perf_counter()
            response = await http.get(f"/api/campaigns/{cid}/streets.geojson", params={"bbox": bbox(1)}, headers=headers)
            warm.append(time.perf_counter() - t0)
    features = json.loads(body)["features"]
    # Baseline: the same rows, unsimplified, as a plain GeoJSON writer would serve them.
    base_times, base_body = [], b""
    for _ in range(3):
        async with sm() as session:
            t0 = time.perf_counter()
            rows = (await session.execute(
                select(Street.name, Street.highway, Street.geometry).where(
                    Street.campaign_id == cid, Street.max_lon >= min_lon, Street.min_lon <= max_lon, Street.max_lat >= min_lat, Street.min_lat <= max_lat)
                .limit(MAX_STREETS)  # the same rows the layer serves
            )).all()
            frame = gpd.GeoDataFrame({"name": [r.name for r in rows], "highway": [r.highway for r in rows]},
                                     geometry=shapely.from_wkb([r.geometry for r in rows]), crs="EPSG:4326")
            base_body = frame.to_json().encode()
            base_times.append(time.perf_counter() - t0)
    await engine.dispose()
    view = statistics.median(cold)
    base = statistics.median(base_times)
    gz = len(gzip.compress(body, 6))
    base_gz = len(gzip.compress(base_body, 6))
    return {
        "streets_in_borough_bbox": report.rows_written,
        "street_layer_cap": MAX_STREETS,
        "street_features_in_view": sum(1 for f in features if f["properties"].get("kind") == "street"),
        "street_layer_view_ms": round(view * 1000, 1),
        "street_layer_view_p_max_ms": round(max(cold) * 1000, 1),
        "street_layer_cached_ms": round(statistics.median(warm) * 1000, 1),
        "street_layer_bytes": len(body),
        "street_layer_gzip_bytes": gz,
        "baseline_plain_geojson_ms": round(base * 1000, 1),
        "baseline_plain_geojson_gzip_bytes": base_gz,
        "view_vs_baseline_time": round(view / base, 2),
        "gzip_vs_baseline_size": round(gz / base_gz, 3),
        "views": views,
        "goal_met": view < 0.2 and gz < 300_000,
    }


def street_layer(args: argparse.Namespace) -> dict[str, Any] | None:
    """The street-layer figures on Camden (None without the data)."""
    import asyncio
    import tempfile

    pbf = data_dir() / "camden" / "osm" / "camden.osm.pbf"
    if not pbf.exists():
        _log("street_layer: Camden data missing, skipped")
        return None
    if args.layer_db == "postgresql":
        import asyncpg

        async def admin(sql: str) -> None:
            conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        db = "canvass_bench_layer"
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        asyncio.run(admin(f'CREATE DATABASE "{db}"'))
        try:
            out = asyncio.run(_street_layer_bench(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}", pbf, args.layer_views))
        finally:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    else:
        with tempfile.TemporaryDirectory() as folder:
            out = asyncio.run(_street_layer_bench(f"sqlite+aiosqlite:///{folder}/layer.sqlite3", pbf, args.layer_views))
    return {"database": args.layer_db, **out}


def national(args: argparse.Namespace) -> dict[str, Any]:
    """The national cut: `--doors` synthetic doors in partitions of `--partition-doors` (one synthetic
    ward each), cut on a Dask LocalCluster of 1 and of 2 workers (server.walklists.national's fan-out,
    each worker running geo.partitions.cut_partition), against the baseline of one 40,000-door
    town cut in this process in the same run (street network build + cut, as each partition pays)."""
    import asyncio

    from distributed import Client, LocalCluster

    from geo.partitions import cut_partition
    from server.walklists.national import Partition, _cuts
    from server.walklists.schemas import CutRequest

    out: dict[str, Any] = {"doors": args.doors, "partition_doors": args.partition_doors, "target": args.target}
    _log("national: baseline, one 40,000-door town in process")
    streets, stops = synthetic_town(40000)
    t0 = time.perf_counter()
    base = cut_partition("baseline", stops, streets, args.target)
    base_s = time.perf_counter() - t0
    out["baseline_40k"] = {"seconds": round(base_s, 2), "lists": len(base.plans), "us_per_door": round(base_s / 40000 * 1e6, 1)}
    _log(f"national: baseline {base_s:.1f}s, {len(base.plans)} lists")

    n_parts = max(1, args.doors // args.partition_doors)
    side = 3000.0 * (args.partition_doors / 40000) ** 0.5 * 1.1
    partitions = []
    for i in range(n_parts):
        p_streets, p_stops = synthetic_town(args.partition_doors, seed=i + 1, size_m=side)
        partitions.append(Partition(key=f"ward-{i:04d}", target_id=0, name=f"ward {i}", stops=p_stops, addresses=None, lines=p_streets))  # type: ignore[arg-type]
    doors = n_parts * args.partition_doors
    out["doors"], out["partitions"] = doors, n_parts
    request = CutRequest(size=args.target)

    async def cut_on(workers: int) -> tuple[float, list[tuple[str, int, tuple[int, ...]]]]:
        async with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, asynchronous=True,
                                dashboard_address=None) as cluster, Client(cluster, asynchronous=True) as client:
            await client.wait_for_workers(workers)
            t0 = time.perf_counter()
            lists, done = [], 0
            async for cut in _cuts(partitions, request, client):
                done += 1
                if done % max(1, n_parts // 10) == 0:
                    _log(f"national {workers}w: {done}/{n_parts} partitions, {time.perf_counter() - t0:.0f}s")
                lists += [(cut.key, plan.doors, tuple(sorted(map(str, plan.stop_ids)))) for plan in cut.plans]
            return time.perf_counter() - t0, sorted(lists)

    runs: dict[str, Any] = {}
    signatures = []
    for workers in args.workers:
        seconds, lists = asyncio.run(cut_on(workers))
        signatures.append(lists)
        runs[str(workers)] = {"seconds": round(seconds, 1), "lists": len(lists), "us_per_door": round(seconds / doors * 1e6, 1),
                              "per_door_vs_40k": round(seconds / doors / (base_s / 40000), 2)}
        _log(f"national: {workers} worker(s) {seconds:.1f}s for {doors} doors, {len(lists)} lists")
    out["workers"] = runs
    out["same_lists_every_run"] = all(sig == signatures[0] for sig in signatures)
    if len(args.workers) >= 2:
        a, b = runs[str(args.workers[0])]["seconds"], runs[str(args.workers[-1])]["seconds"]
        out["speedup"] = round(a / b, 2) if b else None
    return out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: print progress to stderr and the JSON metrics last."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--target", type=int, default=50)
    ap.add_argument("--sample-hk", type=int, default=100)
    ap.add_argument("--sample-ortools", type=int, default=20)
    ap.add_argument("--ortools-seconds", type=float, default=1.0)
    ap.add_argument("--only", choices=["camden", "synthetic_40k", "street_layer"], default=None)
    ap.add_argument("--layer-db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--layer-views", type=int, default=9)
    ap.add_argument("--national", action="store_true", help="Time the national cut on Dask (1 and 2 workers) against the 40k baseline")
    ap.add_argument("--doors", type=int, default=1_000_000, help="--national: synthetic doors in all")
    ap.add_argument("--partition-doors", type=int, default=10_000, help="--national: doors per partition (a ward)")
    ap.add_argument("--workers", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2], help="--national: Dask worker counts, e.g. 1,2")
    args = ap.parse_args(argv)
    if args.national:
        out = national(args)
    else:
        out = run(args) if args.only != "street_layer" else {}
        if args.only in (None, "street_layer"):
            out["street_layer"] = street_layer(args)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
