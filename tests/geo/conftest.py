"""Shared, session-cached loads of the real data sets (each read once per test run)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import pytest

from fixtures.town import Town, generate_town
from geo.addresses import read_osm_addresses
from geo.census import read_area_boundaries, read_census_table
from tests.realdata import real_data_path

CAMDEN_OA_SHP = "camden/boundaries_2011/cdrc_bng/Camden_oa11.shp"
CAMDEN_OA_GEOJSON = "camden/boundaries_2011/oa_by_lad_E09000007.geojson"
CAMDEN_KS201 = "camden/census_2011/cdrc_KS201EW_oa11.csv"
CAMDEN_MLID = "camden/census_2011/ethnicity_2011_oa11_E09000007_from_MLID.csv"
CAMDEN_PBF = "camden/osm/camden.osm.pbf"
CAMDEN_CODEPOINT = "camden/postcodes/codepoint_open_2014-08_E09000007.csv"
CAMDEN_CODEPOINT_HEADERS = "camden/postcodes/Code-Point_Open_Column_Headers.csv"
EW_MLID = "england_wales/ethnicity_2011_oa11_EW.csv"


@pytest.fixture(scope="session")
def town() -> Town:
    return generate_town(2024)


@pytest.fixture(scope="session")
def camden_oas_shp() -> gpd.GeoDataFrame:
    return read_area_boundaries(real_data_path(CAMDEN_OA_SHP))


@pytest.fixture(scope="session")
def camden_oas_geojson() -> gpd.GeoDataFrame:
    return read_area_boundaries(real_data_path(CAMDEN_OA_GEOJSON))


@pytest.fixture(scope="session")
def camden_ks201() -> pd.DataFrame:
    table = read_census_table(real_data_path(CAMDEN_KS201))
    assert table.errors == []
    return table.counts


@dataclass
class OsmRead:
    addresses: gpd.GeoDataFrame
    seconds: float
    progress_calls: list[tuple[int, int | None]]


@pytest.fixture(scope="session")
def camden_osm_read() -> OsmRead:
    """Read Camden's PBF once, timing it and recording progress callbacks."""
    calls: list[tuple[int, int | None]] = []
    start = time.perf_counter()
    gdf = read_osm_addresses(real_data_path(CAMDEN_PBF), progress=lambda d, t: calls.append((d, t)))
    return OsmRead(gdf, time.perf_counter() - start, calls)


@pytest.fixture(scope="session")
def camden_osm_addresses(camden_osm_read: OsmRead) -> gpd.GeoDataFrame:
    return camden_osm_read.addresses
