"""Metric CRS choice: BNG inside Great Britain, local UTM elsewhere."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import box

from geo.projection import projected_crs_for, to_metres


@pytest.mark.parametrize(
    ("bounds", "epsg"),
    [
        ((-0.1, 51.5, 0.0, 51.6), 27700),  # London
        ((-3.3, 55.9, -3.1, 56.0), 27700),  # Edinburgh
        ((2.3, 48.8, 2.4, 48.9), 32631),  # Paris
        ((-74.1, 40.6, -73.9, 40.8), 32618),  # New York
        ((151.1, -33.95, 151.3, -33.8), 32756),  # Sydney (southern hemisphere)
        ((-6.3, 53.3, -6.2, 53.4), 32629),  # Dublin: outside GB
    ],
)
def test_projected_crs_for(bounds: tuple[float, float, float, float], epsg: int) -> None:
    assert projected_crs_for(bounds).to_epsg() == epsg


def test_to_metres() -> None:
    gdf = gpd.GeoDataFrame(geometry=[box(-0.06, 51.52, -0.05, 51.53)], crs=4326)
    metric = to_metres(gdf)
    assert metric.crs.to_epsg() == 27700
    assert 0.7e6 < metric.area.iloc[0] < 0.8e6
    assert to_metres(metric) is metric
    with pytest.raises(ValueError, match="no CRS"):
        to_metres(gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)]))
