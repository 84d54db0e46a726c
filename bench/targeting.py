"""Benchmark targeting on real data against plain pandas/geopandas baselines doing the same job.

Run from the repository root: `python -m bench.targeting [--repeat 7]`.
Progress goes to stderr; the last stdout line is one JSON object:

- `national_rank_s`: rank all ~181,000 England & Wales OAs by bame_share with a threshold and a
  minimum population (`geo.targeting.rank_areas`), data read once; baseline: pandas share
  column, boolean filter, `sort_values`.
- `london_target_s`: rank London's ~25,000 OAs, repair a polygon drawn over several boroughs and
  estimate residents inside it (`rank_areas` + `repair_polygon` + `target_preview`); baseline:
  pandas ranking + `make_valid` + `geopandas.overlay` in EPSG:27700.
- `camden_address_join_s`: put every Camden OSM address in its OA
  (`geo.targeting.assign_points_to_areas`); baseline: `geopandas.sjoin`.

Each figure is the median of `--repeat` warm runs (best in `*_best_s`); `*_ratio` is
baseline / ours (above 1 means ours is faster); `*_same` says both gave the same answer.
Data comes from the shared folder (env CANVASS_DATA_DIR, default `../shared/data`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Polygon, mapping

from geo.addresses import read_osm_addresses
from geo.census import read_area_boundaries, read_census_table
from geo.measures import compile_measure
from geo.targeting import assign_points_to_areas, rank_areas, repair_polygon, target_preview

NON_WHITE = (
    "mixed", "indian", "pakistani", "bangladeshi", "chinese", "asian_other",
    "black_african", "black_caribbean", "black_other", "arab", "other_ethnic",
)
THRESHOLD = 0.3
MIN_POPULATION = 100
# Drawn by hand over Camden, Islington, Hackney, Tower Hamlets and the City (WGS84); the pen
# crossed itself near Highbury (a small bow-tie loop), so repair has work to do.
DRAWN = [
    (-0.190, 51.535), (-0.150, 51.515), (-0.090, 51.505), (-0.020, 51.505), (0.010, 51.530),
    (-0.030, 51.565), (-0.050, 51.550), (-0.080, 51.575), (-0.065, 51.575), (-0.070, 51.550),
    (-0.120, 51.560), (-0.170, 51.555), (-0.190, 51.535),
]
BNG = "EPSG:27700"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _data_dir() -> Path:
    override = os.environ.get("CANVASS_DATA_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _time(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median s, best s, last result) of `repeat` runs after one warm-up."""
    result = fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), result


def _pandas_rank(counts: pd.DataFrame, threshold: float | None, min_population: int | None) -> pd.DataFrame:
    """The plain-pandas ranking: share column, filter, sort (value desc, code asc)."""
    frame = counts.rename_axis(None)  # copies; the index holds the codes
    frame["share"] = frame[list(NON_WHITE)].sum(axis=1) / frame["total"].where(frame["total"] != 0)
    keep = frame["share"].notna()
    if threshold is not None:
        keep &= frame["share"] >= threshold
    if min_population is not None:
        keep &= frame["total"] >= min_population
    frame = frame[keep]
    frame = frame.assign(code=frame.index.astype(str))
    return frame.sort_values(["share", "code"], ascending=[False, True])


def _same_ranking(ours: pd.DataFrame, baseline: pd.DataFrame) -> bool:
    return (
        len(ours) == len(baseline)
        and list(ours["code"].astype(str)) == list(baseline["code"])
        and bool(np.allclose(ours["value"].to_numpy(), baseline["share"].to_numpy(), rtol=0, atol=1e-12))
    )


def bench_national(data: Path, repeat: int) -> dict[str, Any]:
    _log("national: reading England & Wales OA ethnicity table ...")
    counts = read_census_table(data / "england_wales" / "ethnicity_2011_oa11_EW.csv").counts
    measure = compile_measure("bame_share", counts.columns)
    _log(f"national: ranking {len(counts):,} OAs x{repeat} ...")
    ours_s, ours_best, ours = _time(
        lambda: rank_areas(counts, measure, threshold=THRESHOLD, min_population=MIN_POPULATION), repeat
    )
    base_s, base_best, base = _time(lambda: _pandas_rank(counts, THRESHOLD, MIN_POPULATION), repeat)
    return {
        "national_oas": len(counts),
        "national_ranked": len(ours),
        "national_rank_s": round(ours_s, 4),
        "national_rank_best_s": round(ours_best, 4),
        "national_rank_baseline_s": round(base_s, 4),
        "national_rank_baseline_best_s": round(base_best, 4),
        "national_rank_ratio": round(base_s / ours_s, 2),
        "national_rank_same": _same_ranking(ours, base),
    }


def _london_ours(areas: gpd.GeoDataFrame, drawn: dict[str, Any]) -> dict[str, Any]:
    ranked = rank_areas(areas, "bame_share", threshold=0.5, min_population=MIN_POPULATION)
    polygon = repair_polygon(drawn)
    no_addresses = gpd.GeoDataFrame({"building_key": []}, geometry=gpd.GeoSeries([], crs="EPSG:4326"))
    preview = target_preview(polygon, areas, no_addresses, None, groups=("total", "bame"))
    return {
        "ranked": ranked,
        "total": preview["estimated_residents"]["total"],
        "bame": preview["estimated_residents"]["bame"],
        "areas": sorted(a["code"] for a in preview["areas"]),
        "km2": preview["area_km2"],
    }


def _london_baseline(areas: gpd.GeoDataFrame, drawn: dict[str, Any]) -> dict[str, Any]:
    ranked = _pandas_rank(pd.DataFrame(areas.drop(columns="geometry")).set_index("code"), 0.5, MIN_POPULATION)
    polygon = shapely.make_valid(shapely.geometry.shape(drawn))
    target = gpd.GeoDataFrame({"target": [1]}, geometry=[polygon], crs="EPSG:4326").to_crs(BNG)
    areas_m = areas[["code", "total", "bame", "geometry"]].to_crs(BNG)
    areas_m["full_m2"] = areas_m.area
    pieces = gpd.overlay(areas_m, target, how="intersection", keep_geom_type=True)
    fraction = (pieces.area / pieces["full_m2"]).clip(0, 1)
    return {
        "ranked": ranked,
        "total": round(float((pieces["total"] * fraction).sum()), 1),
        "bame": round(float((pieces["bame"] * fraction).sum()), 1),
        "areas": sorted(pieces.loc[fraction > 0, "code"].astype(str)),
        "km2": float(target.area.iloc[0]) / 1e6,
    }


def bench_london(data: Path, repeat: int) -> dict[str, Any]:
    _log("london: reading OA boundaries and ethnicity table ...")
    oas = read_area_boundaries(data / "london" / "oa11_london.geojson")
    counts = read_census_table(data / "london" / "ethnicity_2011_oa11_london.csv").counts
    areas = oas.join(counts, on="code", how="inner")
    areas["bame"] = areas[list(NON_WHITE)].sum(axis=1)
    drawn = mapping(Polygon(DRAWN))
    _log(f"london: ranking {len(areas):,} OAs and previewing a drawn target x{repeat} ...")
    ours_s, ours_best, ours = _time(lambda: _london_ours(areas, drawn), repeat)
    base_s, base_best, base = _time(lambda: _london_baseline(areas, drawn), repeat)
    same = (
        _same_ranking(ours["ranked"], base["ranked"])
        and abs(ours["total"] - base["total"]) <= max(1.0, 1e-6 * base["total"])
        and abs(ours["bame"] - base["bame"]) <= max(1.0, 1e-6 * base["bame"])
        and ours["areas"] == base["areas"]
    )
    return {
        "london_oas": len(areas),
        "london_ranked": len(ours["ranked"]),
        "london_target_km2": round(ours["km2"], 2),
        "london_target_areas": len(ours["areas"]),
        "london_target_residents": ours["total"],
        "london_target_bame": ours["bame"],
        "london_target_s": round(ours_s, 4),
        "london_target_best_s": round(ours_best, 4),
        "london_target_baseline_s": round(base_s, 4),
        "london_target_baseline_best_s": round(base_best, 4),
        "london_target_ratio": round(base_s / ours_s, 2),
        "london_target_same": bool(same),
    }


def _sjoin_codes(points: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> pd.Series:
    """geopandas.sjoin, keeping the lowest-index area per point (as assign_points_to_areas does)."""
    joined = gpd.sjoin(points[["geometry"]], areas[["code", "geometry"]], how="left", predicate="intersects")
    joined = joined.reset_index(names="point").sort_values(["point", "index_right"], kind="stable")
    first = joined.drop_duplicates("point", keep="first").set_index("point")
    return first["code"].reindex(points.index)


def bench_camden_join(data: Path, repeat: int) -> dict[str, Any]:
    _log("camden: reading OSM addresses and OA boundaries ...")
    points = read_osm_addresses(data / "camden" / "osm" / "camden.osm.pbf")
    oas = read_area_boundaries(data / "camden" / "boundaries_2011" / "cdrc_bng" / "Camden_oa11.shp")
    _log(f"camden: assigning {len(points):,} addresses to {len(oas):,} OAs x{repeat} ...")
    ours_s, ours_best, ours = _time(lambda: assign_points_to_areas(points, oas), repeat)
    base_s, base_best, base = _time(lambda: _sjoin_codes(points, oas), repeat)
    same = bool((ours.fillna("") == base.fillna("")).all())
    return {
        "camden_addresses": len(points),
        "camden_addresses_in_oa": int(ours.notna().sum()),
        "camden_address_join_s": round(ours_s, 4),
        "camden_address_join_best_s": round(ours_best, 4),
        "camden_address_join_baseline_s": round(base_s, 4),
        "camden_address_join_baseline_best_s": round(base_best, 4),
        "camden_address_join_ratio": round(base_s / ours_s, 2),
        "camden_address_join_same": same,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per figure (median reported)")
    args = parser.parse_args(argv)
    data = _data_dir()
    if not data.exists():
        sys.exit(f"real data folder missing: {data} (set CANVASS_DATA_DIR)")
    result: dict[str, Any] = {"repeat": args.repeat}
    result |= bench_national(data, args.repeat)
    _log(f"  ours {result['national_rank_s']}s, pandas {result['national_rank_baseline_s']}s")
    result |= bench_london(data, args.repeat)
    _log(f"  ours {result['london_target_s']}s, geopandas {result['london_target_baseline_s']}s")
    result |= bench_camden_join(data, args.repeat)
    _log(f"  ours {result['camden_address_join_s']}s, sjoin {result['camden_address_join_baseline_s']}s")
    result["national_rank_under_1s"] = result["national_rank_s"] < 1.0
    result["all_same"] = all(result[k] for k in ("national_rank_same", "london_target_same", "camden_address_join_same"))
    result["none_slower_than_baseline"] = all(
        result[f"{k}_ratio"] >= 1.0 for k in ("national_rank", "london_target", "camden_address_join")
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
