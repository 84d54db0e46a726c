"""Targeting: rank a campaign's areas by a census measure and build targets from polygons or areas.

Targeting is always by area: measures are formulas over area counts
(geo/measures.py); a target is a polygon; its preview estimates residents per
group from area counts, proportionally to the share of each area inside it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry import mapping
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from geo.measures import PRESETS, Measure, MeasureError, compile_measure
from geo.targeting import (
    TargetGeometryError,
    looks_swapped,
    rank_areas,
    repair_polygon,
    target_preview,
)
from server.db.models import Address, CensusArea, Person, Target
from server.errors import InvalidInput, NotFound
from server.geography.services import campaign_addresses_frame, campaign_area_polygons
from server.settings import Settings
from server.targeting.schemas import (
    AreaRankingCollection,
    MeasurePreset,
    TargetCreate,
    TargetOut,
    TargetPreview,
    TargetPreviewArea,
)

WHITE_2011 = ("white_british", "white_irish", "white_gypsy_traveller", "white_other")


def list_presets() -> list[MeasurePreset]:
    """Every preset measure, with the exact formula used per census layout."""
    return [
        MeasurePreset(name=name, formulas=[f for f, _ in variants], descriptions=[d for _, d in variants])
        for name, variants in sorted(PRESETS.items())
    ]


def counts_frame(areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Expand the JSON counts into one numeric column per census key, plus derived `bame` residents."""
    counts = pd.DataFrame(list(areas["counts"]), index=areas.index).fillna(0)
    frame = areas.drop(columns=["counts"]).join(counts)
    if "total" in frame.columns:
        if all(c in frame.columns for c in WHITE_2011):
            frame["bame"] = frame["total"] - frame[list(WHITE_2011)].sum(axis=1)
        elif "white" in frame.columns:
            frame["bame"] = frame["total"] - frame["white"]
    return frame


def _compile(measure: str, columns: Any) -> Measure:
    try:
        return compile_measure(measure, columns)
    except MeasureError as exc:
        raise InvalidInput(str(exc), errors=[{"field": "measure", "message": str(exc)}]) from exc


async def _within_geometry(session: AsyncSession, campaign_id: int, within_area: str | None, within_target: int | None) -> Any:
    if within_target is not None:
        target = await session.get(Target, within_target)
        if target is None or target.campaign_id != campaign_id or target.geometry is None:
            raise NotFound(f"No target {within_target} in this campaign.")
        return shapely.from_wkb(target.geometry)
    if within_area:
        geometry = await session.scalar(
            select(CensusArea.geometry)
            .where(CensusArea.campaign_id == campaign_id, CensusArea.code == within_area, CensusArea.geometry.is_not(None))
        )
        if geometry is None:
            raise NotFound(f"No area {within_area} with a boundary in this campaign.")
        return shapely.from_wkb(geometry)
    return None


async def rank_campaign_areas(
    session: AsyncSession,
    campaign_id: int,
    *,
    measure: str,
    kind: str | None = None,
    threshold: float | None = None,
    top_n: int | None = None,
    min_population: int | None = None,
    within_area: str | None = None,
    within_target: int | None = None,
) -> AreaRankingCollection:
    """Rank the campaign's areas of one kind by a measure; GeoJSON with value, rank, counts and population.

    Without a `kind`, the campaign's finest geography with counts (OA, else LSOA, ...), as previews and `canvass rank` choose.
    """
    if kind is None:
        finest = await finest_counted_geography(session, campaign_id)
        kind = finest[0] if finest else "OA"
    areas = await campaign_area_polygons(session, campaign_id, kind=kind)
    if areas.empty:
        raise NotFound(f"The campaign has no {kind} areas with boundaries; import boundaries and a census table first.")
    frame = counts_frame(areas)
    compiled = _compile(measure, frame.columns)
    within = await _within_geometry(session, campaign_id, within_area, within_target)
    ranked = await asyncio.to_thread(
        rank_areas, frame, compiled, threshold=threshold, top_n=top_n, min_population=min_population, within=within
    )
    columns = list(compiled.columns)
    features = []
    for _, row in ranked.iterrows():
        properties: dict[str, Any] = {
            "code": row["code"],
            "name": row.get("name", ""),
            "rank": int(row["rank"]),
            "value": round(float(row["value"]), 6),
            "population": int(row["population"]),
        }
        for column in columns:
            if column in row.index:
                properties[column] = int(row[column])
        features.append({"type": "Feature", "geometry": mapping(row.geometry) if row.geometry is not None else None, "properties": properties})
    return AreaRankingCollection(
        type="FeatureCollection", features=features, measure=compiled.name, formula=compiled.formula, columns=columns, count=len(features)
    )


async def _campaign_extent(session: AsyncSession, campaign_id: int) -> tuple[float, float, float, float] | None:
    """The bounding box of the campaign's addresses (else its areas), or None when it has neither yet."""
    for columns, where in (
        ((func.min(Address.lon), func.min(Address.lat), func.max(Address.lon), func.max(Address.lat)), Address.campaign_id == campaign_id),
        ((func.min(CensusArea.min_lon), func.min(CensusArea.min_lat), func.max(CensusArea.max_lon), func.max(CensusArea.max_lat)),
         CensusArea.campaign_id == campaign_id),
    ):
        row = (await session.execute(select(*columns).where(where))).one()
        if all(v is not None for v in row):
            return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
    return None


async def _target_geometry(session: AsyncSession, campaign_id: int, data: TargetCreate, settings: Settings) -> Any:
    polygon = None
    if data.polygon is not None:
        try:
            polygon = repair_polygon(data.polygon, max_vertices=settings.max_polygon_vertices)
        except (TargetGeometryError, ValueError, TypeError, KeyError) as exc:
            raise InvalidInput(f"Unusable polygon: {exc}", errors=[{"field": "polygon", "message": str(exc)}]) from exc
        extent = await _campaign_extent(session, campaign_id)
        if extent is not None and looks_swapped(polygon, extent):
            message = "coordinates look swapped: GeoJSON wants [longitude, latitude], and this polygon only covers the campaign read as [latitude, longitude]"
            raise InvalidInput(f"Unusable polygon: its {message}.", errors=[{"field": "polygon", "message": message}])
    areas_geometry = None
    if data.area_codes:
        rows = (
            await session.execute(
                select(CensusArea.code, CensusArea.geometry)
                .where(CensusArea.campaign_id == campaign_id, CensusArea.code.in_(data.area_codes), CensusArea.geometry.is_not(None))
            )
        ).all()
        missing = sorted(set(data.area_codes) - {r.code for r in rows})
        if missing:
            raise InvalidInput(f"Unknown area codes for this campaign: {', '.join(missing[:10])}", errors=[{"field": "area_codes", "message": "unknown codes"}])
        areas_geometry = shapely.union_all(shapely.from_wkb([r.geometry for r in rows]))
    if polygon is None and areas_geometry is None:
        raise InvalidInput("A target needs a polygon, area codes, or both.", errors=[{"field": "polygon", "message": "missing"}])
    if polygon is not None and areas_geometry is not None:
        geometry = polygon.intersection(areas_geometry) if data.combine == "intersection" else polygon.union(areas_geometry)
    else:
        geometry = polygon if polygon is not None else areas_geometry
    geometry = shapely.make_valid(geometry)
    if geometry.is_empty or geometry.area == 0:
        raise InvalidInput("The target is empty (the polygon and the areas do not overlap).", errors=[{"field": "polygon", "message": "empty"}])
    return geometry


ESTIMATE_KINDS = ("OA", "LSOA", "MSOA", "ward")


async def finest_counted_geography(session: AsyncSession, campaign_id: int) -> tuple[str, int] | None:
    """(kind, vintage) of the campaign's finest areas with both boundaries and counts (OA, else LSOA, ...; the latest vintage)."""
    have = (await session.execute(
        select(CensusArea.kind, CensusArea.vintage)
        .where(CensusArea.campaign_id == campaign_id, CensusArea.geometry.is_not(None), CensusArea.population.is_not(None))
        .distinct()
    )).all()
    if not have:
        return None
    kind, vintage = min(have, key=lambda r: (ESTIMATE_KINDS.index(r[0]) if r[0] in ESTIMATE_KINDS else len(ESTIMATE_KINDS), -r[1]))
    return str(kind), int(vintage)


async def estimate_areas(session: AsyncSession, campaign_id: int) -> gpd.GeoDataFrame:
    """The campaign's finest census geography that has both boundaries and counts, with those counts.

    Previews estimate residents from these, so a campaign with only 2021 LSOAs is estimated from them.
    """
    finest = await finest_counted_geography(session, campaign_id)
    if finest is None:
        return await campaign_area_polygons(session, campaign_id, kind="OA")
    kind, vintage = finest
    rows = (await session.execute(
        select(CensusArea.code, CensusArea.name, CensusArea.kind, CensusArea.geometry, CensusArea.counts, CensusArea.population)
        .where(CensusArea.campaign_id == campaign_id, CensusArea.kind == kind, CensusArea.vintage == vintage,
               CensusArea.geometry.is_not(None), CensusArea.population.is_not(None))
    )).all()
    return gpd.GeoDataFrame(
        {"code": [r.code for r in rows], "name": [r.name for r in rows], "kind": [r.kind for r in rows],
         "population": [r.population for r in rows], "counts": [r.counts for r in rows]},
        geometry=shapely.from_wkb([r.geometry for r in rows]), crs="EPSG:4326",
    )


async def preview_geometry(session: AsyncSession, campaign_id: int, geometry: Any, groups: tuple[str, ...] = ("total", "bame")) -> TargetPreview:
    """Doors, electors, area-weighted residents per group and km2 inside a polygon (from the finest geography with counts)."""
    areas = await estimate_areas(session, campaign_id)
    frame = counts_frame(areas) if not areas.empty else gpd.GeoDataFrame({"code": [], "total": [], "bame": []}, geometry=[], crs="EPSG:4326")
    groups = tuple(g for g in groups if g in frame.columns)
    addresses = await campaign_addresses_frame(session, campaign_id)
    electors = dict(
        (await session.execute(
            select(Person.address_id, func.count()).where(Person.campaign_id == campaign_id, Person.address_id.is_not(None)).group_by(Person.address_id)
        )).all()
    )
    result = await asyncio.to_thread(target_preview, geometry, frame, addresses, pd.Series(electors, dtype="int64"), groups)
    return TargetPreview(
        area_km2=round(result["area_km2"], 4),
        addresses=result["addresses"],
        buildings=result["buildings"],
        electors=result["electors"],
        estimated_residents=result["estimated_residents"],
        areas=[TargetPreviewArea(code=a["code"], fraction_inside=a["fraction_inside"]) for a in result["areas"]],
    )


def target_out(target: Target, preview: TargetPreview | None = None) -> TargetOut:
    """Struct for a target row."""
    geometry = mapping(shapely.from_wkb(target.geometry)) if target.geometry else None
    return TargetOut(id=target.id, name=target.name, rule=target.rule, geometry=geometry, created_at=target.created_at, preview=preview)


async def create_target(session: AsyncSession, campaign_id: int, data: TargetCreate, user_id: int | None, settings: Settings) -> TargetOut:
    """Store a target with the rule that produced it, and answer its preview."""
    if not data.name.strip():
        raise InvalidInput("A target needs a name.", errors=[{"field": "name", "message": "empty"}])
    geometry = await _target_geometry(session, campaign_id, data, settings)
    minx, miny, maxx, maxy = geometry.bounds
    rule = {
        "polygon": data.polygon is not None,
        "area_codes": sorted(data.area_codes or []),
        "combine": data.combine if data.polygon is not None and data.area_codes else None,
        "measure": data.measure,
        "threshold": data.threshold,
    }
    target = Target(
        campaign_id=campaign_id, name=data.name.strip(), rule=rule, geometry=shapely.to_wkb(geometry),
        min_lon=minx, min_lat=miny, max_lon=maxx, max_lat=maxy, created_by=user_id,
    )
    session.add(target)
    await session.flush()
    return target_out(target, await preview_geometry(session, campaign_id, geometry))


async def preview_target_request(session: AsyncSession, campaign_id: int, data: TargetCreate, settings: Settings) -> TargetPreview:
    """Preview a target before saving it."""
    return await preview_geometry(session, campaign_id, await _target_geometry(session, campaign_id, data, settings))


async def get_target(session: AsyncSession, campaign_id: int, target_id: int) -> Target:
    """A target of the campaign, or 404."""
    target = await session.get(Target, target_id)
    if target is None or target.campaign_id != campaign_id:
        raise NotFound(f"No target {target_id} in this campaign.")
    return target

