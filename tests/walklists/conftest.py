"""Fixtures for walk-list tests: real Camden data (skipped if absent) and a small synthetic town."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from bench.walklists import read_osm_addresses, synthetic_town
from geo.streets import StreetNetwork, read_street_network, street_network_from_lines


def real_data_dir() -> Path:
    """$CANVASS_DATA_DIR, else ../shared/data beside the repository."""
    env = os.environ.get("CANVASS_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def require_real(path: Path) -> Path:
    """Skip (or fail, with CANVASS_REQUIRE_REAL_DATA=1) when a real data file is missing."""
    if not path.exists():
        msg = f"real data missing: {path}"
        if os.environ.get("CANVASS_REQUIRE_REAL_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def camden_pbf() -> Path:
    return require_real(real_data_dir() / "camden" / "osm" / "camden.osm.pbf")


@pytest.fixture(scope="session")
def camden_network(camden_pbf: Path) -> StreetNetwork:
    return read_street_network(camden_pbf)


# Kentish Town / Camden Town: crossed by several A roads (Camden Road, Kentish Town Road...)
CAMDEN_BOX = (-0.1500, 51.5380, -0.1330, 51.5480)


@pytest.fixture(scope="session")
def camden_box_stops(camden_pbf: Path) -> gpd.GeoDataFrame:
    stops = read_osm_addresses(camden_pbf)
    sub = stops[stops.within(box(*CAMDEN_BOX))].reset_index(drop=True)
    # give a few addresses many doors, as blocks of flats
    doors = sub["doors"].to_numpy().copy()
    rng = np.random.default_rng(7)
    flats = rng.choice(len(sub), size=max(1, len(sub) // 40), replace=False)
    doors[flats] = rng.integers(8, 30, flats.size)
    sub["doors"] = doors
    return sub


@pytest.fixture(scope="session")
def small_town() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, StreetNetwork]:
    streets, stops = synthetic_town(doors=3000, seed=3, size_m=1000.0)
    return streets, stops, street_network_from_lines(streets)
