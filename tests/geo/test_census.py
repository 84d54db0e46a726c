"""Boundary and census-table readers on real files (Camden, Newham) and on broken input."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from geo.census import (
    KS201_KEYS,
    CensusFormatError,
    RowError,
    infer_area_kind,
    read_area_boundaries,
    read_census_table,
    read_lsoa_lookup,
)
from geo.measures import MeasureError, compile_measure, evaluate
from tests.geo.conftest import CAMDEN_MLID
from tests.realdata import real_data_path

MLID_HEADER = (
    "OA11CD,LSOA11CD,MSOA11CD,LAD11NM,Persons,WhiteBrit,Irish,OtherWhite,Mixed,Indian,Pakistani,"
    "Bangladeshi,Chinese,OtherAsian,BlkAfrican,BlkCaribbean,OtherBlk,Arab,Other,GypsyIrishTraveller_derived"
)


def test_camden_oas_from_bng_shapefile_and_geojson_agree(
    camden_oas_shp, camden_oas_geojson
) -> None:
    for gdf in (camden_oas_shp, camden_oas_geojson):
        assert len(gdf) == 749
        assert list(gdf.columns) == ["code", "name", "kind", "geometry"]
        assert gdf.crs.to_epsg() == 4326
        assert set(gdf["kind"]) == {"OA"}
        assert gdf.is_valid.all()
    assert sorted(camden_oas_shp["code"]) == sorted(camden_oas_geojson["code"])
    # Same places: the BNG shapefile, reprojected, lands where the WGS84 GeoJSON is.
    a = camden_oas_shp.set_index("code").geometry.to_crs(27700)
    b = camden_oas_geojson.set_index("code").geometry.to_crs(27700).reindex(a.index)
    overlap = a.intersection(b).area / a.area
    assert overlap.median() > 0.9


def test_other_camden_boundaries_kinds() -> None:
    cases = {
        "camden/boundaries_2021/wards22_bsc_E09000007.geojson": ("ward", 20),
        "camden/electoral/wpc_by_lad_E09000007.geojson": ("constituency", 2),
        "camden/boundaries_2021/lsoa21_bsc_E09000007.geojson": ("LSOA", 130),
        "camden/boundaries_2011/lsoa_by_lad_E09000007.geojson": ("LSOA", 133),
        "camden/electoral/wards_by_lad_E09000007.geojson": ("ward", 18),
    }
    for rel, (kind, count) in cases.items():
        gdf = read_area_boundaries(real_data_path(rel))
        assert (gdf["kind"].iloc[0], len(gdf)) == (kind, count), rel
    wards = read_area_boundaries(
        real_data_path("camden/boundaries_2021/wards22_bsc_E09000007.geojson")
    )
    assert "Belsize" in set(wards["name"])


def test_ks201ew_and_mlid_give_identical_counts(camden_ks201) -> None:
    mlid = read_census_table(real_data_path(CAMDEN_MLID))
    assert (mlid.table, mlid.vintage, mlid.errors) == ("KS201EW", 2011, [])
    assert len(camden_ks201) == len(mlid.counts) == 749
    assert list(camden_ks201.columns) == [*KS201_KEYS, "mixed"]
    # MLID has no detail for the four mixed groups: those columns are absent, not guessed.
    assert set(mlid.counts.columns) == set(camden_ks201.columns) - set(KS201_KEYS[5:9])
    common = list(mlid.counts.columns)
    pd.testing.assert_frame_equal(
        camden_ks201.loc[mlid.counts.index, common], mlid.counts[common], check_dtype=False
    )
    assert (camden_ks201[list(KS201_KEYS[1:])].sum(axis=1) == camden_ks201["total"]).all()


def test_newham_oas_join_mlid_table() -> None:
    oas = read_area_boundaries(real_data_path("newham/boundaries_2011/oa_by_lad_E09000025.geojson"))
    table = read_census_table(
        real_data_path("newham/census_2011/ethnicity_2011_oa11_E09000025_from_MLID.csv")
    )
    assert len(oas) == 810 and table.errors == []
    assert set(oas["code"]) == set(table.counts.index)
    assert oas.is_valid.all()  # E00018302's self-touching ring is repaired on read
    joined = oas.join(table.counts, on="code")
    assert joined["total"].notna().all()
    bame = evaluate(compile_measure("bame_share", joined.columns), joined)
    total = joined["total"].sum()
    assert (bame * joined["total"]).sum() / total == pytest.approx(0.710, abs=0.001)


def test_ts021_broad_table() -> None:
    table = read_census_table(
        real_data_path("camden/census_2021/ts021_ethnic_group_broad_lsoa21_E09000007.csv")
    )
    assert (table.table, table.vintage, table.errors) == ("TS021", 2021, [])
    assert list(table.counts.columns) == [
        "total",
        "asian",
        "black",
        "mixed",
        "white",
        "other_ethnic",
    ]
    assert len(table.counts) == 130
    counts = table.counts
    bame = evaluate(compile_measure("bame_share", counts.columns), counts)
    assert (bame * counts["total"]).sum() / counts["total"].sum() == pytest.approx(0.405, abs=0.001)
    with pytest.raises(MeasureError, match="cannot separate White British"):
        compile_measure("ethnic_minority_share", counts.columns)


def test_ts021_detailed_official_layout(tmp_path: Path) -> None:
    path = tmp_path / "ts021.csv"
    # Column labels as in the official ONS TS021 download (detail columns after their broad group).
    frame = pd.DataFrame(
        [["2021", "Camden 001A", "E01000001", 1500, 300, 120, 1000, 800]],
        columns=[
            "date",
            "geography",
            "geography code",
            "Ethnic group: Total: All usual residents",
            "Ethnic group: Asian, Asian British or Asian Welsh",
            "Ethnic group: Asian, Asian British or Asian Welsh: Bangladeshi",
            "Ethnic group: White",
            "Ethnic group: White: English, Welsh, Scottish, Northern Irish or British",
        ],
    )
    frame.to_csv(path, index=False)
    table = read_census_table(path)
    assert table.table == "TS021"
    assert table.counts.loc["E01000001"].to_dict() == {
        "total": 1500,
        "asian": 300,
        "bangladeshi": 120,
        "white": 1000,
        "white_british": 800,
    }
    m = compile_measure("ethnic_minority_share", table.counts.columns)
    assert evaluate(m, table.counts).iloc[0] == pytest.approx(700 / 1500)


def test_bad_rows_reported_by_file_line(tmp_path: Path) -> None:
    good = "E00000001,L,M,Camden,10,5,1,1,1,1,0,0,0,0,0,0,0,0,1,0"
    path = tmp_path / "bad.csv"
    path.write_text(
        "\n".join(
            [
                MLID_HEADER,
                good,
                "",  # a blank line is not a row
                good.replace("E00000001", "E00000002"),
                "E00000003,L,M,Camden,10,5,1,1,1,1,0,0,0,0,0,0,0,0,1,x",
                ",L,M,Camden,10,5,1,1,1,1,0,0,0,0,0,0,0,0,1,0",
                "E00000004,L,M,Camden,10,-5,1,1,1,1,0,0,0,0,0,0,0,0,1,0",
                "E00000005,L,M,Camden,10.5,5,1,1,1,1,0,0,0,0,0,0,0,0,1,0",
                good,
            ]
        )
        + "\n"
    )
    table = read_census_table(path)
    assert sorted(table.counts.index) == ["E00000001", "E00000002"]
    assert [e.line for e in table.errors] == [5, 6, 7, 8, 9]
    assert table.errors[0] == RowError(
        5, "column 'GypsyIrishTraveller_derived': 'x' is not a whole number"
    )
    assert "missing area code" in table.errors[1].reason
    assert "negative" in table.errors[2].reason
    assert "not a whole number" in table.errors[3].reason
    assert "duplicate area code 'E00000001'" in table.errors[4].reason


def test_unknown_layout_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(CensusFormatError, match="unrecognised census layout"):
        read_census_table(path)


def test_boundaries_in_any_crs_and_kind_from_field(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {"LSOA21CD": ["X01000001", "X01000002"], "LSOA21NM": ["One", "Two"]},
        geometry=[box(530000, 180000, 530500, 180500), box(530500, 180000, 531000, 180500)],
        crs=27700,
    )
    path = tmp_path / "areas.gpkg"
    gdf.to_file(path, engine="pyogrio")
    out = read_area_boundaries(path)
    assert out.crs.to_epsg() == 4326
    assert list(out["name"]) == ["One", "Two"] and set(out["kind"]) == {"LSOA"}
    assert out.to_crs(27700).area.sum() == pytest.approx(500_000, rel=1e-6)
    assert infer_area_kind("E05000138") == "ward"
    assert infer_area_kind("E14000727") == "constituency"
    assert infer_area_kind("X00000001", "OA11CD") == "OA"


def test_lsoa_lookup() -> None:
    lookup = read_lsoa_lookup(
        real_data_path("camden/census_2021/lookup_lsoa11_lsoa21_E09000007.csv")
    )
    assert {"lsoa11", "lsoa21", "change"} <= set(lookup.columns)
    assert set(lookup["change"]) <= {"U", "S", "M", "X"}
    assert lookup["lsoa21"].nunique() == 130
