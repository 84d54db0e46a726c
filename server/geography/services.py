"""Imports of public and campaign data: census boundaries and tables, addresses, the register.

Each import runs in one unit of work: either every row lands or (on error) none
does. Bad rows are reported by file line; by default any bad row fails the
import (nothing changes), and `skip_bad_rows=True` imports the good rows and
reports the skipped ones. The file readers live in `geo/` (pure).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyogrio.errors import DataSourceError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from geo.addresses import (
    ADDRESS_FORMAT_HELP,
    address_format_mismatch,
    detect_address_format,
    read_address_csv,
    read_codepoint_checked,
    read_osm_addresses,
)
from geo.census import CensusFormatError, RowError, read_area_boundaries, read_census_table
from geo.register import match_register, read_register_csv
from geo.targeting import assign_points_to_areas
from server.db.models import Address, CampaignArea, CensusArea, Person
from server.errors import InvalidInput
from server.geography.schemas import ImportReport, ImportRowError

Progress = Callable[[str, int, int | None], None]
BATCH = 2000
MAX_REPORTED_ERRORS = 200


def _missing(value: object) -> bool:
    """None or a pandas missing value (NaN/NA)."""
    return value is None or bool(pd.isna(value))


def _clip_to_columns(model: Any, row: dict[str, Any]) -> dict[str, Any]:
    """Cut strings to their column's length (PostgreSQL refuses longer ones; real OSM tags can be long)."""
    columns = model.__table__.c
    for key, value in row.items():
        length = getattr(columns[key].type, "length", None) if isinstance(value, str) else None
        if length and len(value) > length:
            row[key] = value[:length]
    return row


def _noop(_stage: str, _done: int, _total: int | None) -> None:
    return None


def _row_errors(errors: Sequence[RowError]) -> list[ImportRowError]:
    return [ImportRowError(line=e.line, reason=e.reason) for e in errors[:MAX_REPORTED_ERRORS]]


def _refuse_bad_rows(kind: str, errors: Sequence[RowError], skip_bad_rows: bool) -> None:
    if errors and not skip_bad_rows:
        first = errors[0]
        raise InvalidInput(
            f"{kind} import refused: {len(errors)} bad row(s), first at line {first.line}: {first.reason}. "
            "Nothing was imported; fix the rows or import with --skip-bad-rows (HTTP: skip_bad_rows=true).",
            errors=[{"field": f"line {e.line}", "message": e.reason} for e in errors[:MAX_REPORTED_ERRORS]],
        )


async def _in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking reader (GDAL, pyosmium, pandas) off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def _own_areas(campaign_id: int, codes: Sequence[str], vintage: int) -> tuple[Any, ...]:
    """Conditions for this campaign's areas with these codes: an import never matches another campaign's areas."""
    return (CensusArea.campaign_id == campaign_id, CensusArea.code.in_(codes), CensusArea.vintage == vintage)


async def _link_areas(session: AsyncSession, campaign_id: int, area_ids: Sequence[int]) -> None:
    existing = set(
        (await session.scalars(select(CampaignArea.area_id).where(CampaignArea.campaign_id == campaign_id))).all()
    )
    new = [{"campaign_id": campaign_id, "area_id": i} for i in area_ids if i not in existing]
    for start in range(0, len(new), BATCH):
        await session.execute(insert(CampaignArea), new[start : start + BATCH])


async def import_boundaries(
    session: AsyncSession,
    campaign_id: int,
    path: Path,
    *,
    vintage: int | None = None,
    kind: str | None = None,
    code_field: str | None = None,
    name_field: str | None = None,
    progress: Progress = _noop,
) -> ImportReport:
    """Census or electoral area polygons (GeoJSON, GPKG, Shapefile; any CRS) stored as WGS84 WKB."""
    try:
        frame: gpd.GeoDataFrame = await _in_thread(read_area_boundaries, path, code_field, name_field, kind)
    except (CensusFormatError, ValueError, OSError, DataSourceError) as exc:
        raise InvalidInput(f"Cannot read boundaries from {path.name}: {exc}") from exc
    vintage = _boundary_vintage(path.name, frame.attrs.get("code_field"), frame.attrs.get("vintage"), vintage)
    total = len(frame)
    progress("boundaries", 0, total)
    codes = frame["code"].astype(str).tolist()
    existing = dict(
        (await session.execute(select(CensusArea.code, CensusArea.id).where(*_own_areas(campaign_id, codes, vintage)))).all()
    )
    bounds = shapely.bounds(frame.geometry.to_numpy())
    wkb = shapely.to_wkb(frame.geometry.to_numpy())
    new_rows, updates, updated = [], [], 0
    for i, code in enumerate(codes):
        values = {
            "name": str(frame["name"].iloc[i] or ""),
            "kind": str(frame["kind"].iloc[i] or kind or "area"),
            "geometry": wkb[i],
            "min_lon": float(bounds[i, 0]),
            "min_lat": float(bounds[i, 1]),
            "max_lon": float(bounds[i, 2]),
            "max_lat": float(bounds[i, 3]),
        }
        if code in existing:
            updates.append({"id": existing[code], **values})
            updated += 1
        else:
            new_rows.append({"campaign_id": campaign_id, "code": code, "vintage": vintage, "counts": {}, **values})
        if i % BATCH == 0:
            progress("boundaries", i, total)
    for start in range(0, len(updates), BATCH):  # bulk UPDATE by primary key, not one statement per area
        await session.execute(update(CensusArea), updates[start : start + BATCH])
    for start in range(0, len(new_rows), BATCH):
        await session.execute(insert(CensusArea), new_rows[start : start + BATCH])
    ids = (await session.scalars(select(CensusArea.id).where(*_own_areas(campaign_id, codes, vintage)))).all()
    await _link_areas(session, campaign_id, ids)
    progress("boundaries", total, total)
    kinds = frame["kind"].fillna("area").value_counts().to_dict()
    return ImportReport(
        kind="boundaries", source=path.name, rows_read=total, rows_written=total,
        details={"vintage": vintage, "created": len(new_rows), "updated": updated, **{f"kind_{k}": int(v) for k, v in kinds.items()}},
    )


def _boundary_vintage(source: str, code_field: str | None, detected: int | None, given: int | None) -> int:
    """The vintage to store boundaries under: the one their code field names (LSOA21CD: 2021), else the given one, else 2011."""
    if detected is not None and given is not None and detected != given:
        raise InvalidInput(
            f"{source} has its area codes in {code_field}, which are {detected} boundaries, but vintage {given} was given: "
            f"leave out --vintage (HTTP: vintage) or give {detected}.",
            errors=[{"field": "vintage", "message": f"{code_field} means {detected}"}],
        )
    return detected or given or 2011


async def _refuse_census_matching_nothing(session: AsyncSession, campaign_id: int, codes: Sequence[str], table: Any, source: str) -> None:
    """A census table none of whose codes has a boundary of its vintage in the campaign is refused (nothing to rank)."""
    matched = 0
    for start in range(0, len(codes), 5000):
        matched += int(await session.scalar(
            select(func.count()).select_from(CensusArea).join(CampaignArea, CampaignArea.area_id == CensusArea.id)
            .where(CampaignArea.campaign_id == campaign_id, CensusArea.vintage == table.vintage,
                   CensusArea.code.in_(codes[start : start + 5000]), CensusArea.geometry.is_not(None))
        ) or 0)
    if matched or not codes:
        return
    have = (await session.execute(
        select(CensusArea.vintage, CensusArea.kind, func.count()).join(CampaignArea, CampaignArea.area_id == CensusArea.id)
        .where(CampaignArea.campaign_id == campaign_id, CensusArea.geometry.is_not(None)).group_by(CensusArea.vintage, CensusArea.kind)
    )).all()
    boundaries = ", ".join(f"{n} {kind} ({vintage})" for vintage, kind, n in have) or "none"
    raise InvalidInput(
        f"census import matched no area: none of the {len(codes)} codes of {source} ({table.table}, {table.vintage} areas, e.g. {codes[0]}) "
        f"has a {table.vintage} boundary in this campaign (its boundaries: {boundaries}). "
        f"Import the {table.vintage} boundaries first; nothing was imported.",
        errors=[{"field": "file", "message": "no area matched"}],
    )


async def import_census_table(
    session: AsyncSession, campaign_id: int, path: Path, *, skip_bad_rows: bool = False, progress: Progress = _noop
) -> ImportReport:
    """Census counts joined to areas by code; codes with no boundary are kept as count-only areas and reported."""
    try:
        table = await _in_thread(read_census_table, path)
    except (CensusFormatError, ValueError, OSError) as exc:
        raise InvalidInput(f"Cannot read census table {path.name}: {exc}") from exc
    _refuse_bad_rows("census", table.errors, skip_bad_rows)
    counts: pd.DataFrame = table.counts
    codes = [str(c) for c in counts.index]
    total = len(codes)
    await _refuse_census_matching_nothing(session, campaign_id, codes, table, path.name)
    progress("census", 0, total)
    existing: dict[str, int] = {}
    for start in range(0, total, 5000):
        chunk = codes[start : start + 5000]
        existing.update(
            (await session.execute(select(CensusArea.code, CensusArea.id).where(*_own_areas(campaign_id, chunk, table.vintage)))).all()
        )
    records = counts.astype("int64").to_dict(orient="index")
    from geo.census import infer_area_kind

    new_rows = []
    unmatched: list[str] = []
    updates = []
    for i, code in enumerate(codes):
        row = {k: int(v) for k, v in records[code].items()}
        population = row.get("total")
        if code in existing:
            updates.append({"id": existing[code], "counts": row, "population": population, "census_table": table.table})
        else:
            unmatched.append(code)
            new_rows.append(
                {"campaign_id": campaign_id, "code": code, "vintage": table.vintage, "kind": infer_area_kind(code) or "area", "name": "",
                 "counts": row, "population": population, "census_table": table.table}
            )
        if i % BATCH == 0:
            progress("census", i, total)
    for start in range(0, len(updates), BATCH):
        batch = updates[start : start + BATCH]
        await session.execute(update(CensusArea), batch)
    for start in range(0, len(new_rows), BATCH):
        await session.execute(insert(CensusArea), new_rows[start : start + BATCH])
    ids: list[int] = []
    for start in range(0, total, 5000):
        chunk = codes[start : start + 5000]
        ids += (await session.scalars(select(CensusArea.id).where(*_own_areas(campaign_id, chunk, table.vintage)))).all()
    await _link_areas(session, campaign_id, ids)
    progress("census", total, total)
    return ImportReport(
        kind="census", source=path.name, rows_read=total + len(table.errors), rows_written=total,
        rows_skipped=len(table.errors), unmatched=len(unmatched), unmatched_examples=unmatched[:20],
        details={"vintage": table.vintage, "matched_boundaries": len(updates)},
        errors=_row_errors(table.errors),
    )


async def campaign_area_polygons(session: AsyncSession, campaign_id: int, kind: str | None = "OA") -> gpd.GeoDataFrame:
    """The campaign's areas that have boundaries, as a WGS84 GeoDataFrame with code and counts."""
    query = (
        select(CensusArea.code, CensusArea.name, CensusArea.kind, CensusArea.geometry, CensusArea.counts, CensusArea.population)
        .where(CensusArea.campaign_id == campaign_id, CensusArea.geometry.is_not(None))
    )
    if kind:
        query = query.where(CensusArea.kind == kind)
    rows = (await session.execute(query)).all()
    return gpd.GeoDataFrame(
        {
            "code": [r.code for r in rows],
            "name": [r.name for r in rows],
            "kind": [r.kind for r in rows],
            "population": [r.population for r in rows],
            "counts": [r.counts for r in rows],
        },
        geometry=shapely.from_wkb([r.geometry for r in rows]) if rows else [],
        crs="EPSG:4326",
    )


ADDRESS_FORMATS = ("osm", "codepoint", "csv")


def _address_format(path: Path, fmt: str | None) -> str:
    """The format to read an address file as: the given one unless the file plainly is another, else detected."""
    if fmt is not None and fmt not in ADDRESS_FORMATS:
        raise InvalidInput(f"Unknown address format {fmt!r}; use one of {', '.join(ADDRESS_FORMATS)}.",
                           errors=[{"field": "format", "message": "unknown format"}])
    if fmt is not None:
        hint = address_format_mismatch(path, fmt)
        if hint:
            raise InvalidInput(f"Cannot read {path.name} as {fmt}: {hint} (HTTP: format=).", errors=[{"field": "format", "message": hint}])
        return fmt
    detected = detect_address_format(path)
    if detected is None:
        choices = "; ".join(f"--format {name} for {text}" for name, text in ADDRESS_FORMAT_HELP.items())
        raise InvalidInput(f"Could not tell the format of {path.name}: give {choices} (HTTP: format=).",
                           errors=[{"field": "format", "message": "format not recognised"}])
    return detected


def _drop_rows_without_points(frame: gpd.GeoDataFrame, errors: list[RowError]) -> tuple[gpd.GeoDataFrame, list[RowError]]:
    """Rows with no point, an empty point or non-finite coordinates become bad rows (never a NOT NULL failure)."""
    geometry = frame.geometry.to_numpy()
    missing = shapely.is_missing(geometry) | shapely.is_empty(geometry)
    xy = np.full((len(frame), 2), np.nan)
    if (~missing).any():
        xy[~missing] = shapely.get_coordinates(geometry[~missing])
    bad = missing | ~np.isfinite(xy).all(axis=1)
    if not bad.any():
        return frame, errors
    lines = frame["line"].to_numpy() if "line" in frame.columns else np.arange(1, len(frame) + 1)
    extra = [RowError(int(line), "no usable coordinates") for line in lines[bad]]
    return frame[~bad], sorted([*errors, *extra], key=lambda e: e.line)


async def import_addresses(
    session: AsyncSession,
    campaign_id: int,
    path: Path,
    *,
    fmt: str | None = None,
    crs: str | None = None,
    skip_bad_rows: bool = False,
    progress: Progress = _noop,
) -> ImportReport:
    """Address points (OSM PBF, Code-Point Open postcodes, generic CSV) placed in the campaign's areas.

    Without `fmt` the format is told from the file; a file that plainly is another format is refused
    with a hint naming it. Rows without a usable point are bad rows, reported by file line.
    """
    fmt = _address_format(path, fmt)
    errors: list[RowError] = []
    details: dict[str, Any] = {"format": fmt}
    try:
        if fmt == "osm":
            frame = await _in_thread(read_osm_addresses, path, lambda d, t: progress("reading", d, t))
        elif fmt == "codepoint":
            frame, errors, header_line = await _in_thread(read_codepoint_checked, path)
            if header_line:
                details["header_line"] = header_line
            frame = frame.assign(
                uprn=None, lines=[(pc,) for pc in frame["postcode"]], street="", house_number="", flat=None,
                building_key=["pc:" + pc for pc in frame["postcode"]],
            )
        else:
            frame, errors = await _in_thread(read_address_csv, path, crs)
    except (CensusFormatError, ValueError, OSError, RuntimeError) as exc:
        hint = address_format_mismatch(path, fmt)
        raise InvalidInput(f"Cannot read addresses from {path.name} as {fmt}: {exc}" + (f" ({hint})" if hint else "")) from exc
    frame, errors = _drop_rows_without_points(frame, errors)
    _refuse_bad_rows("address", errors, skip_bad_rows)
    areas = await campaign_area_polygons(session, campaign_id, kind=None)
    oa = areas[areas["kind"] == "OA"] if (areas["kind"] == "OA").any() else areas
    area_codes = assign_points_to_areas(frame, oa) if len(oa) else pd.Series([None] * len(frame), index=frame.index)
    xs, ys = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    total = len(frame)
    # Plain lists: per-row `frame[col].iloc[i]` costs ~10 us a cell (seconds on a borough).
    col = {c: frame[c].tolist() for c in ("lines", "uprn", "flat", "postcode", "building_key", "street", "house_number")}
    codes_list = area_codes.tolist()
    rows = []
    for i in range(total):
        lines = col["lines"][i]
        uprn = col["uprn"][i]
        flat = col["flat"][i]
        rows.append(_clip_to_columns(Address,
            {
                "campaign_id": campaign_id,
                "uprn": None if _missing(uprn) else str(uprn),
                "lines": [str(x) for x in (lines or ())],
                "postcode": str(col["postcode"][i] or ""),
                "lon": float(xs[i]),
                "lat": float(ys[i]),
                "building_key": str(col["building_key"][i] or f"{fmt}:{i}"),
                "street": str(col["street"][i] or ""),
                "house_number": str(col["house_number"][i] or ""),
                "flat": None if _missing(flat) else str(flat),
                "area_code": None if _missing(codes_list[i]) else str(codes_list[i]),
                "source": fmt,
            }
        ))
    for start in range(0, total, BATCH):
        await session.execute(insert(Address), rows[start : start + BATCH])
        progress("addresses", min(start + BATCH, total), total)
    outside = int(area_codes.isna().sum())
    return ImportReport(
        kind="addresses", source=path.name, rows_read=total + len(errors), rows_written=total, rows_skipped=len(errors),
        unmatched=outside,
        details={**details, "outside_campaign_areas": outside, "with_house_number": int((frame["house_number"].astype(str) != "").sum())},
        errors=_row_errors(errors),
    )


async def import_streets(
    session: AsyncSession, campaign_id: int, path: Path, *, replace: bool = True, progress: Progress = _noop
) -> ImportReport:
    """Walkable streets from an OSM PBF (major roads become barriers when cutting walk lists)."""
    from geo.streets import StreetNetworkError, read_street_lines
    from server.db.models import Street
    from server.walklists.services import store_streets

    try:
        lines = await _in_thread(read_street_lines, path)
    except (StreetNetworkError, ValueError, OSError, RuntimeError) as exc:
        raise InvalidInput(f"Cannot read streets from {path.name}: {exc}") from exc
    progress("streets", 0, len(lines))
    if replace:
        await session.execute(delete(Street).where(Street.campaign_id == campaign_id))
    written = await store_streets(session, campaign_id, lines, "osm")
    progress("streets", written, written)
    buildings = await import_buildings(session, campaign_id, path, replace=replace, progress=progress)
    majors = int(lines["highway"].str.replace("_link", "").isin(["trunk", "primary", "secondary"]).sum())
    return ImportReport(kind="streets", source=path.name, rows_read=len(lines), rows_written=written,
                        details={"major_roads": majors, "buildings": buildings})


async def import_buildings(
    session: AsyncSession, campaign_id: int, path: Path, *, replace: bool = True, progress: Progress = _noop
) -> int:
    """Building outlines from the same OSM PBF (drawn on maps with no tile server); returns how many."""
    from geo.buildings import BuildingReadError, read_building_outlines
    from server.db.models import Building

    try:
        outlines = await _in_thread(read_building_outlines, path)
    except (BuildingReadError, OSError, RuntimeError) as exc:
        raise InvalidInput(f"Cannot read buildings from {path.name}: {exc}") from exc
    if replace:
        await session.execute(delete(Building).where(Building.campaign_id == campaign_id))
    written = await store_buildings(session, campaign_id, outlines, "osm")
    progress("buildings", written, written)
    return written


async def store_buildings(session: AsyncSession, campaign_id: int, outlines: gpd.GeoDataFrame, source: str) -> int:
    """Insert building outlines (WGS84 polygons; column ``building``) for a campaign, with their bboxes."""
    from server.db.models import Building

    if len(outlines) == 0:
        return 0
    geoms = outlines.to_crs("EPSG:4326").geometry.to_numpy()
    bounds = shapely.bounds(geoms)
    wkb = shapely.to_wkb(geoms)
    rows = [
        {
            "campaign_id": campaign_id, "building": str(kind or "yes")[:32], "geometry": wkb[i],
            "min_lon": float(bounds[i, 0]), "min_lat": float(bounds[i, 1]), "max_lon": float(bounds[i, 2]), "max_lat": float(bounds[i, 3]),
            "source": source,
        }
        for i, kind in enumerate(outlines["building"])
    ]
    for start in range(0, len(rows), 2000):
        await session.execute(insert(Building), rows[start : start + 2000])
    return len(rows)


async def campaign_addresses_frame(session: AsyncSession, campaign_id: int) -> gpd.GeoDataFrame:
    """The campaign's addresses as a WGS84 GeoDataFrame indexed by address id."""
    rows = (
        await session.execute(
            select(Address.id, Address.uprn, Address.lines, Address.postcode, Address.lon, Address.lat, Address.building_key,
                   Address.street, Address.house_number, Address.flat, Address.area_code)
            .where(Address.campaign_id == campaign_id)
            .order_by(Address.id)
        )
    ).all()
    frame = pd.DataFrame(rows, columns=["id", "uprn", "lines", "postcode", "lon", "lat", "building_key", "street", "house_number", "flat", "area_code"])
    frame["lines"] = frame["lines"].map(lambda v: tuple(v or ()))
    return gpd.GeoDataFrame(frame.set_index("id"), geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326")


async def import_register(
    session: AsyncSession, campaign_id: int, path: Path, *, skip_bad_rows: bool = False, replace: bool = False, progress: Progress = _noop
) -> ImportReport:
    """Register entries matched to the campaign's addresses by UPRN, else address, else postcode (flagged)."""
    try:
        register, errors = await _in_thread(read_register_csv, path)
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"Cannot read register {path.name}: {exc}") from exc
    _refuse_bad_rows("register", errors, skip_bad_rows)
    addresses = await campaign_addresses_frame(session, campaign_id)
    progress("matching", 0, len(register))
    matched = await _in_thread(match_register, register, addresses)
    if replace:  # through the one erasure path: tombstones and erase changes tell the phones
        from server.sync.erasure import erase_people

        removed = list(await session.scalars(select(Person.id).where(Person.campaign_id == campaign_id)))
        await erase_people(session, campaign_id, removed, None)
    rows = []
    for record in matched.to_dict(orient="records"):
        address_index = record.get("address_index")
        rows.append(_clip_to_columns(Person,
            {
                "campaign_id": campaign_id,
                "address_id": None if _missing(address_index) else int(address_index),
                "polling_district": str(record["polling_district"]),
                "elector_number": int(record["elector_number"]),
                "elector_suffix": str(record.get("suffix") or ""),
                "franchise": str(record.get("franchise") or "")[:8],
                "surname": str(record["surname"]),
                "forenames": str(record["forenames"]),
                "match": str(record["match"]),
            }
        ))
    for start in range(0, len(rows), BATCH):
        await session.execute(insert(Person), rows[start : start + BATCH])
        progress("register", min(start + BATCH, len(rows)), len(rows))
    by_match = matched["match"].value_counts().to_dict()
    unmatched_lines = matched.loc[matched["match"] == "unmatched", "line"].astype(int).tolist()
    return ImportReport(
        kind="register", source=path.name, rows_read=len(rows) + len(errors), rows_written=len(rows), rows_skipped=len(errors),
        unmatched=int(by_match.get("unmatched", 0)), unmatched_examples=[f"line {n}" for n in unmatched_lines[:20]],
        details={(f"matched_by_{k}" if k != "unmatched" else "unmatched"): int(v) for k, v in by_match.items()}, errors=_row_errors(errors),
    )
