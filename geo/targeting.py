"""Choose areas to canvass: rank census areas by a measure, repair drawn polygons, preview targets.

Targeting is always by area statistics, never by person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from geo.measures import Measure, compile_measure, evaluate
from geo.projection import WGS84, projected_crs_for

DEFAULT_MAX_AREA_KM2 = 200.0


class TargetGeometryError(ValueError):
    """A drawn target polygon that cannot be used (empty, not polygonal, too big, too complex)."""


def _counts_frame(areas: pd.DataFrame) -> pd.DataFrame:
    """Index a frame by area code (accepts a `code` column or a code index)."""
    if "code" in areas.columns:
        return areas.set_index("code", drop=False)
    return areas


def rank_areas(
    areas_gdf_with_counts: pd.DataFrame,
    measure: Measure | str,
    threshold: float | None = None,
    top_n: int | None = None,
    min_population: int | None = None,
    within: BaseGeometry | None = None,
) -> pd.DataFrame:
    """Rank areas by a measure (highest first) with rank, value, population and the counts used.

    Areas whose value is undefined (zero population) are excluded. `within` (WGS84 polygon) keeps
    areas at least half inside it (measured in metres); it needs a GeoDataFrame. Accepts a plain
    DataFrame too (e.g. the national OA table, no geometry).
    """
    frame = _counts_frame(areas_gdf_with_counts)
    if isinstance(measure, str):
        measure = compile_measure(measure, frame.columns)
    if "total" not in frame.columns:
        raise ValueError("areas need a 'total' column (population) to rank")
    values = evaluate(measure, frame).to_numpy()
    population = frame["total"].to_numpy()
    keep = ~np.isnan(values)
    if threshold is not None:
        keep &= values >= threshold
    if min_population is not None:
        keep &= population >= min_population
    if within is not None:
        if not isinstance(frame, gpd.GeoDataFrame):
            raise ValueError("`within` needs areas with geometry (a GeoDataFrame)")
        keep &= _mostly_inside(frame, within)
    idx = np.flatnonzero(keep)
    codes = frame.index.to_numpy()[idx]
    vals = values[idx]
    # Sort by value desc, then code asc, for a stable and reproducible order.
    order = np.lexsort((codes.astype(str), -vals))
    idx = idx[order]
    if top_n is not None:
        idx = idx[: max(int(top_n), 0)]
    used = [c for c in measure.columns if c != "total"]
    out = pd.DataFrame(
        {
            "code": frame.index.to_numpy()[idx],
            "rank": np.arange(1, len(idx) + 1),
            "value": values[idx],
            "population": population[idx],
        }
    )
    for col in used:
        out[col] = frame[col].to_numpy()[idx]
    for extra in ("name", "kind"):
        if extra in frame.columns:
            out[extra] = frame[extra].to_numpy()[idx]
    if isinstance(frame, gpd.GeoDataFrame):
        return gpd.GeoDataFrame(out, geometry=frame.geometry.to_numpy()[idx], crs=frame.crs)
    return out


def _mostly_inside(frame: gpd.GeoDataFrame, within: BaseGeometry, share: float = 0.5) -> np.ndarray:
    """Mask of areas with at least `share` of their area inside `within` (both WGS84)."""
    geoms = frame.geometry.to_crs(WGS84) if frame.crs is not None else frame.geometry
    mask = np.zeros(len(frame), dtype=bool)
    hits = shapely.STRtree(geoms.to_numpy()).query(within, predicate="intersects")
    if len(hits) == 0:
        return mask
    crs = projected_crs_for(geoms.iloc[hits])
    sub = gpd.GeoSeries(geoms.to_numpy()[hits], crs=WGS84).to_crs(crs)
    target = gpd.GeoSeries([within], crs=WGS84).to_crs(crs).iloc[0]
    inter = sub.intersection(target).area.to_numpy()
    area = sub.area.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        mask[hits] = np.where(area > 0, inter / area, 0) >= share
    return mask


def repair_polygon(
    geojson_geometry: Mapping[str, Any] | BaseGeometry,
    max_vertices: int = 10_000,
    max_area_km2: float = DEFAULT_MAX_AREA_KM2,
) -> Polygon | MultiPolygon:
    """Turn an organiser-drawn WGS84 GeoJSON geometry into a valid polygon, or explain why not.

    Self-intersections are repaired with make_valid (a bow-tie becomes a MultiPolygon);
    empty, non-polygonal, off-the-globe, over-complex or over-large shapes raise TargetGeometryError.
    """
    if isinstance(geojson_geometry, BaseGeometry):
        geom = geojson_geometry
    else:
        data = dict(geojson_geometry)
        if data.get("type") == "Feature":
            data = dict(data.get("geometry") or {})
        if data.get("type") not in ("Polygon", "MultiPolygon"):
            raise TargetGeometryError(
                f"target must be a GeoJSON Polygon or MultiPolygon, got {data.get('type')!r}"
            )
        try:
            geom = shape(data)
        except (
            ValueError,
            TypeError,
            IndexError,
            KeyError,
            AttributeError,
            shapely.errors.GEOSException,
        ) as exc:
            raise TargetGeometryError(f"malformed GeoJSON coordinates: {exc}") from None
    if geom.is_empty:
        raise TargetGeometryError("target polygon is empty")
    if not isinstance(geom, Polygon | MultiPolygon):
        raise TargetGeometryError(f"target must be a polygon, got {geom.geom_type}")
    vertices = shapely.get_num_coordinates(geom)
    if vertices > max_vertices:
        raise TargetGeometryError(
            f"target polygon has {vertices} vertices; the limit is {max_vertices}"
        )
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise TargetGeometryError(
            "target coordinates are not WGS84 longitude/latitude (did you send British National Grid?)"
        )
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
        polys = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty]
        polys += [
            p for g in shapely.get_parts(geom) if isinstance(g, MultiPolygon) for p in g.geoms
        ]
        if not polys:
            raise TargetGeometryError(
                "target polygon has no area after repair (all its points are in a line?)"
            )
        geom = polys[0] if len(polys) == 1 else MultiPolygon(polys)
        geom = shapely.make_valid(geom) if not geom.is_valid else geom
    area_km2 = (
        float(gpd.GeoSeries([geom], crs=WGS84).to_crs(projected_crs_for(geom.bounds)).area.iloc[0])
        / 1e6
    )
    if area_km2 <= 0:
        raise TargetGeometryError("target polygon has zero area")
    if area_km2 > max_area_km2:
        raise TargetGeometryError(
            f"target polygon covers {area_km2:.1f} km2; the limit is {max_area_km2:g} km2"
        )
    return geom


def assign_points_to_areas(points_gdf: gpd.GeoDataFrame, areas_gdf: gpd.GeoDataFrame) -> pd.Series:
    """Area code containing each point (missing where none does); a point on a shared edge gets one area."""
    areas = areas_gdf.to_crs(points_gdf.crs) if areas_gdf.crs != points_gdf.crs else areas_gdf
    codes = areas["code"].to_numpy() if "code" in areas.columns else areas.index.to_numpy()
    area_geoms = areas.geometry.to_numpy()
    point_geoms = points_gdf.geometry.to_numpy()
    if len(point_geoms) >= len(area_geoms):
        # Many points, fewer areas: index the points and query with each area, which shapely
        # prepares, so each point test runs against a prepared polygon (several times faster).
        area_idx, point_idx = shapely.STRtree(point_geoms).query(area_geoms, predicate="intersects")
    else:
        point_idx, area_idx = shapely.STRtree(area_geoms).query(point_geoms, predicate="intersects")
    result = np.full(len(points_gdf), None, dtype=object)
    if len(point_idx):
        # Keep the first (lowest-index) area per point so edges are assigned deterministically.
        order = np.lexsort((area_idx, point_idx))
        point_idx, area_idx = point_idx[order], area_idx[order]
        first = np.r_[True, point_idx[1:] != point_idx[:-1]]
        result[point_idx[first]] = codes[area_idx[first]]
    return pd.Series(result, index=points_gdf.index, name="area_code")


def target_preview(
    target_polygon: BaseGeometry,
    areas_gdf: gpd.GeoDataFrame,
    addresses_gdf: gpd.GeoDataFrame,
    electors_count_by_address: Mapping[Any, int] | pd.Series | None = None,
    groups: Sequence[str] = ("total",),
) -> dict[str, Any]:
    """Summarise a target: addresses and electors inside, estimated residents per group, km2.

    Residents are estimated by areal weighting: sum over areas of count x (intersection area /
    area area), computed in EPSG:27700 (or local UTM outside GB). Electors are counted per
    address index (keys of `electors_count_by_address`).
    """
    crs = projected_crs_for(target_polygon.bounds)
    target_m = gpd.GeoSeries([target_polygon], crs=WGS84).to_crs(crs).iloc[0]
    addresses = addresses_gdf.to_crs(WGS84) if addresses_gdf.crs != WGS84 else addresses_gdf
    inside_mask = shapely.contains_xy(
        target_polygon, addresses.geometry.x.to_numpy(), addresses.geometry.y.to_numpy()
    )
    inside_index = addresses.index[inside_mask]
    electors = None
    if electors_count_by_address is not None:
        counts = pd.Series(electors_count_by_address)
        electors = int(counts.reindex(inside_index).fillna(0).sum())
    missing = [g for g in groups if g not in areas_gdf.columns]
    if missing:
        raise ValueError(f"areas lack count columns {missing}")
    areas_wgs = areas_gdf.to_crs(WGS84) if areas_gdf.crs != WGS84 else areas_gdf
    hits = shapely.STRtree(areas_wgs.geometry.to_numpy()).query(
        target_polygon, predicate="intersects"
    )
    estimates = {g: 0.0 for g in groups}
    area_rows: list[dict[str, Any]] = []
    if len(hits):
        sub = areas_wgs.iloc[hits]
        sub_m = sub.geometry.to_crs(crs)
        fraction = (sub_m.intersection(target_m).area / sub_m.area).fillna(0).clip(0, 1).to_numpy()
        for g in groups:
            estimates[g] = float((sub[g].to_numpy(dtype=float) * fraction).sum())
        codes = sub["code"].to_numpy() if "code" in sub.columns else sub.index.to_numpy()
        area_rows = [
            {"code": str(c), "fraction_inside": round(float(f), 4)}
            for c, f in zip(codes, fraction, strict=True)
            if f > 0
        ]
    return {
        "area_km2": float(target_m.area) / 1e6,
        "addresses": int(inside_mask.sum()),
        "buildings": int(addresses.loc[inside_mask, "building_key"].nunique())
        if "building_key" in addresses.columns
        else None,
        "electors": electors,
        "estimated_residents": {g: round(v, 1) for g, v in estimates.items()},
        "areas": area_rows,
        "crs_used": crs.to_string(),
    }


def looks_swapped(polygon: BaseGeometry, extent: tuple[float, float, float, float]) -> bool:
    """True when a polygon misses the data's extent (minx, miny, maxx, maxy) but would overlap it with x and y swapped.

    Catches a polygon written [latitude, longitude], which GeoJSON forbids and
    which otherwise makes a target with no doors and no explanation.
    """
    area = shapely.box(*extent)
    if polygon.intersects(area):
        return False
    return bool(shapely.transform(polygon, lambda xy: xy[:, ::-1]).intersects(area))
