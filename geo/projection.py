"""Pick a metric CRS for a dataset and project into it.

We store everything in WGS84 lon/lat (EPSG:4326) and measure lengths and areas
in a projected CRS: British National Grid (EPSG:27700) inside Great Britain,
otherwise the local UTM zone chosen from the data's bounds.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
from pyproj import CRS
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from shapely.geometry import Point, Polygon

WGS84 = "EPSG:4326"
BNG = "EPSG:27700"

# Lon/lat bounds of Great Britain (incl. Shetland, Scilly), where BNG is the natural metric CRS.
GB_BOUNDS = (-8.82, 49.79, 1.92, 60.94)

# Rough outline of the island of Ireland (which lies inside GB's bounding box but not on the grid).
IRELAND = Polygon(
    [
        (-11.0, 51.2),
        (-6.2, 51.8),
        (-5.9, 53.3),
        (-5.35, 54.3),
        (-6.0, 55.3),
        (-7.0, 55.6),
        (-11.0, 55.6),
    ]
)

Bounds = Sequence[float]


def _bounds_lonlat(gdf_or_bounds: gpd.GeoDataFrame | gpd.GeoSeries | Bounds) -> tuple[float, ...]:
    """Return (minx, miny, maxx, maxy) in lon/lat for a frame (any CRS) or raw lon/lat bounds."""
    if isinstance(gdf_or_bounds, gpd.GeoDataFrame | gpd.GeoSeries):
        if gdf_or_bounds.crs is None:
            raise ValueError("geometry has no CRS; set one explicitly (e.g. EPSG:4326)")
        data = (
            gdf_or_bounds.to_crs(WGS84)
            if not CRS(gdf_or_bounds.crs).is_geographic
            else gdf_or_bounds
        )
        return tuple(float(v) for v in data.total_bounds)
    values = tuple(float(v) for v in gdf_or_bounds)
    if len(values) != 4:
        raise ValueError("bounds must be (minx, miny, maxx, maxy) in lon/lat")
    return values


def projected_crs_for(gdf_or_bounds: gpd.GeoDataFrame | gpd.GeoSeries | Bounds) -> CRS:
    """EPSG:27700 when the data lies inside Great Britain, else the local UTM zone."""
    minx, miny, maxx, maxy = _bounds_lonlat(gdf_or_bounds)
    gminx, gminy, gmaxx, gmaxy = GB_BOUNDS
    centre_point = Point((minx + maxx) / 2, (miny + maxy) / 2)
    in_box = minx >= gminx and maxx <= gmaxx and miny >= gminy and maxy <= gmaxy
    if in_box and not IRELAND.contains(centre_point):
        return CRS.from_user_input(BNG)
    infos = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(minx, miny, maxx, maxy),
    )
    if not infos:
        raise ValueError(f"no UTM zone found for bounds {minx, miny, maxx, maxy}")
    # Prefer the zone whose central meridian is nearest the data's centre.
    centre = (minx + maxx) / 2
    best = min(infos, key=lambda i: abs(((centre + 180) // 6) * 6 - 177 - _utm_central(i.code)))
    return CRS.from_epsg(int(best.code))


def _utm_central(code: str) -> float:
    """Central meridian of a WGS84 UTM EPSG code (326zz / 327zz)."""
    zone = int(code[-2:])
    return zone * 6 - 183


def to_metres(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> gpd.GeoDataFrame | gpd.GeoSeries:
    """Reproject to the metric CRS suited to the data (see `projected_crs_for`)."""
    if gdf.crs is None:
        raise ValueError("geometry has no CRS; set one explicitly (e.g. EPSG:4326)")
    if CRS(gdf.crs).is_projected and CRS(gdf.crs).axis_info[0].unit_name in ("metre", "meter"):
        return gdf
    return gdf.to_crs(projected_crs_for(gdf))
