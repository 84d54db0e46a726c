"""Ranking areas, repairing drawn polygons, previews and point-in-area assignment."""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import MultiPolygon, Polygon, box, mapping

from fixtures.town import Town, town_addresses_gdf, town_areas_gdf
from geo.addresses import read_codepoint
from geo.census import read_census_table
from geo.measures import compile_measure
from geo.targeting import (
    TargetGeometryError,
    assign_points_to_areas,
    rank_areas,
    repair_polygon,
    target_preview,
)
from tests.geo.conftest import CAMDEN_CODEPOINT, CAMDEN_CODEPOINT_HEADERS, CAMDEN_KS201, EW_MLID
from tests.realdata import real_data_path


def test_camden_108_oas_at_least_half_bame(camden_oas_geojson, camden_ks201) -> None:
    areas = camden_oas_geojson.join(camden_ks201, on="code")
    ranked = rank_areas(areas, "bame_share", threshold=0.5)
    assert len(ranked) == 108
    assert isinstance(ranked, gpd.GeoDataFrame) and ranked.crs.to_epsg() == 4326
    assert list(ranked["rank"]) == list(range(1, 109))
    assert ranked["value"].is_monotonic_decreasing
    # Same answer computed directly from the official CSV with pandas.
    raw = pd.read_csv(real_data_path(CAMDEN_KS201))
    white = raw[["KS201EW0002", "KS201EW0003", "KS201EW0004", "KS201EW0005"]].sum(axis=1)
    share = (raw["KS201EW0001"] - white) / raw["KS201EW0001"]
    assert (share >= 0.5).sum() == 108
    top = raw.loc[share.idxmax()]
    assert ranked.iloc[0]["code"] == top["GeographyCode"]
    assert ranked.iloc[0]["value"] == pytest.approx(share.max())
    assert ranked.iloc[0]["population"] == top["KS201EW0001"]
    assert {"bangladeshi", "black_african", "mixed"} <= set(ranked.columns)


def test_rank_all_england_and_wales_oas_fast() -> None:
    counts = read_census_table(real_data_path(EW_MLID)).counts
    assert len(counts) == 181_408
    measure = compile_measure("bame_share", counts.columns)
    rank_areas(counts, measure, threshold=0.5)  # warm up
    start = time.perf_counter()
    ranked = rank_areas(counts, measure)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, elapsed
    assert len(ranked) == 181_408
    assert ranked["value"].is_monotonic_decreasing
    national = (ranked["value"] * ranked["population"]).sum() / ranked["population"].sum()
    assert national == pytest.approx(0.14, abs=0.005)  # 2011 E&W: 14% not White


def test_rank_filters(town: Town) -> None:
    areas = town_areas_gdf(town)
    ranked = rank_areas(areas, "bangladeshi_share", top_n=5, min_population=260)
    assert len(ranked) == 5 and (ranked["population"] >= 260).all()
    assert ranked["value"].is_monotonic_decreasing
    plain = pd.DataFrame(areas.drop(columns="geometry"))
    plain.loc[0, [c for c in plain.columns if c not in ("code", "name", "kind")]] = 0
    ranked_plain = rank_areas(plain, "bame_share")
    assert len(ranked_plain) == len(areas) - 1  # zero-population area is left out, not an error
    east_half = box(-0.0505, 51.5, -0.03, 51.55)
    inside = rank_areas(areas, "bame_share", within=east_half)
    assert 0 < len(inside) < len(areas)
    cent = gpd.GeoSeries(inside.geometry.to_numpy(), crs=4326).to_crs(27700).centroid.to_crs(4326)
    assert (cent.x > -0.053).all()
    with pytest.raises(ValueError, match="GeoDataFrame"):
        rank_areas(plain, "bame_share", within=east_half)


def test_repair_polygon() -> None:
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [[-0.06, 51.52], [-0.05, 51.53], [-0.05, 51.52], [-0.06, 51.53], [-0.06, 51.52]]
        ],
    }
    fixed = repair_polygon(bowtie)
    assert fixed.is_valid and isinstance(fixed, MultiPolygon) and fixed.area > 0
    square = box(-0.06, 51.52, -0.05, 51.53)
    assert repair_polygon(
        {"type": "Feature", "properties": {}, "geometry": mapping(square)}
    ).equals(square)
    assert isinstance(repair_polygon(square), Polygon)


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "Point", "coordinates": [0, 51]}, "Polygon or MultiPolygon"),
        ({"type": "Polygon", "coordinates": []}, "empty"),
        (mapping(box(-1.0, 51.0, 1.0, 52.0)), "limit is"),
        (mapping(box(530000, 180000, 531000, 181000)), "British National Grid"),
        (
            mapping(Polygon([(-0.06, 51.52), (-0.05, 51.52), (-0.04, 51.52), (-0.06, 51.52)])),
            "no area",
        ),
        (
            mapping(
                Polygon(
                    [
                        (-0.06 + 0.001 * np.cos(t), 51.52 + 0.001 * np.sin(t))
                        for t in np.linspace(0, 6.28, 20_001)
                    ]
                )
            ),
            "vertices",
        ),
    ],
)
def test_repair_polygon_rejects(geometry: dict, message: str) -> None:
    with pytest.raises(TargetGeometryError, match=message):
        repair_polygon(geometry)


def test_target_preview_on_town(town: Town) -> None:
    areas = town_areas_gdf(town)
    addresses = town_addresses_gdf(town)
    electors = pd.Series([e.uprn for e in town.electors]).value_counts()
    per_address = pd.Series(
        addresses["uprn"].map(electors).fillna(0).astype(int).to_numpy(), index=addresses.index
    )
    everything = box(-0.07, 51.52, -0.03, 51.54)
    whole = target_preview(
        everything, areas, addresses, per_address, groups=["total", "bangladeshi"]
    )
    assert whole["addresses"] == len(addresses)
    assert whole["electors"] == len(town.electors)
    assert whole["estimated_residents"]["total"] == pytest.approx(areas["total"].sum(), rel=1e-6)
    assert whole["estimated_residents"]["bangladeshi"] == pytest.approx(
        areas["bangladeshi"].sum(), rel=1e-6
    )
    part = box(-0.05, 51.525, -0.04, 51.532)
    preview = target_preview(part, areas, addresses, per_address)
    direct = addresses.within(part).sum()
    assert preview["addresses"] == direct and 0 < direct < len(addresses)
    assert 0 < preview["estimated_residents"]["total"] < areas["total"].sum()
    metric_area = gpd.GeoSeries([part], crs=4326).to_crs(27700).area.iloc[0] / 1e6
    assert preview["area_km2"] == pytest.approx(metric_area)
    assert preview["crs_used"] == "EPSG:27700"
    assert all(0 < a["fraction_inside"] <= 1 for a in preview["areas"])


def test_every_camden_postcode_falls_in_an_oa(camden_oas_shp) -> None:
    postcodes = read_codepoint(
        real_data_path(CAMDEN_CODEPOINT), real_data_path(CAMDEN_CODEPOINT_HEADERS)
    )
    assert len(postcodes) == 8354
    codes = assign_points_to_areas(postcodes, camden_oas_shp)
    assert codes.notna().all()
    assert codes.nunique() == 749  # every OA has at least one postcode
    assert (codes.index == postcodes.index).all()
