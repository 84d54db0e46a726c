"""Building outlines from OSM (ways and multipolygon relations tagged ``building=*``).

They are drawn on the maps when no tile server is configured (the street layer, see
``server/phone/layers.py``); they are not used for targeting or routing. Not personal data.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import shapely


class BuildingReadError(ValueError):
    """The OSM file cannot be read for buildings."""


def read_building_outlines(pbf_path: str | Path) -> gpd.GeoDataFrame:
    """Building areas from a .osm.pbf (pyosmium, areas assembled from closed ways and
    multipolygons) as WGS84 polygons [building, geometry]. ``building=no`` is skipped. An
    extract with no buildings gives an empty frame (buildings are optional on the map)."""
    import osmium

    path = Path(pbf_path)
    if not path.exists():
        raise BuildingReadError(f"no such OSM file: {path}")
    factory = osmium.geom.WKBFactory()
    kinds: list[str] = []
    wkbs: list[bytes] = []
    processor = osmium.FileProcessor(str(path)).with_areas().with_filter(osmium.filter.KeyFilter("building"))
    for obj in processor:
        if not obj.is_area():
            continue
        kind = obj.tags.get("building", "yes")
        if kind == "no":
            continue
        try:
            wkbs.append(bytes.fromhex(factory.create_multipolygon(obj)))
        except (RuntimeError, osmium.InvalidLocationError):
            continue  # an outline with missing nodes at the extract's edge
        kinds.append(kind[:32])
    geometry = shapely.from_wkb(wkbs) if wkbs else []
    return gpd.GeoDataFrame({"building": kinds}, geometry=list(geometry), crs="EPSG:4326")
