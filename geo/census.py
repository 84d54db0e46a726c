"""Read census area boundaries and census ethnic-group tables into canonical shapes.

Ethnicity exists here ONLY as counts per area (never per person). Every table is
mapped onto canonical column keys so measures can be written once:

2011 (KS201EW order): total, white_british, white_irish, white_gypsy_traveller,
white_other, mixed_white_black_caribbean, mixed_white_black_african,
mixed_white_asian, mixed_other, indian, pakistani, bangladeshi, chinese,
asian_other, black_african, black_caribbean, black_other, arab, other_ethnic,
plus `mixed` (sum of the four mixed groups, or MLID's single Mixed column).

2021 TS021 broad: total, asian, black, mixed, white, other_ethnic; detailed TS021
columns (when present in an official file) map onto the 2011 keys plus white_roma.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

WGS84 = "EPSG:4326"

KS201_KEYS: tuple[str, ...] = (
    "total",
    "white_british",
    "white_irish",
    "white_gypsy_traveller",
    "white_other",
    "mixed_white_black_caribbean",
    "mixed_white_black_african",
    "mixed_white_asian",
    "mixed_other",
    "indian",
    "pakistani",
    "bangladeshi",
    "chinese",
    "asian_other",
    "black_african",
    "black_caribbean",
    "black_other",
    "arab",
    "other_ethnic",
)
MIXED_DETAIL: tuple[str, ...] = KS201_KEYS[5:9]
WHITE_2011: tuple[str, ...] = KS201_KEYS[1:5]
TS021_BROAD_KEYS: tuple[str, ...] = ("total", "asian", "black", "mixed", "white", "other_ethnic")

# MLID-derived file column -> canonical key.
MLID_COLUMNS: dict[str, str] = {
    "Persons": "total",
    "WhiteBrit": "white_british",
    "Irish": "white_irish",
    "GypsyIrishTraveller_derived": "white_gypsy_traveller",
    "OtherWhite": "white_other",
    "Mixed": "mixed",
    "Indian": "indian",
    "Pakistani": "pakistani",
    "Bangladeshi": "bangladeshi",
    "Chinese": "chinese",
    "OtherAsian": "asian_other",
    "BlkAfrican": "black_african",
    "BlkCaribbean": "black_caribbean",
    "OtherBlk": "black_other",
    "Arab": "arab",
    "Other": "other_ethnic",
}

# TS021 (2021) labels, after stripping an "Ethnic group: " prefix, lower-cased.
TS021_LABELS: dict[str, str] = {
    "total: all usual residents": "total",
    "total": "total",
    "asian, asian british or asian welsh": "asian",
    "black, black british, black welsh, caribbean or african": "black",
    "mixed or multiple ethnic groups": "mixed",
    "white": "white",
    "other ethnic group": "other_ethnic",
    "asian, asian british or asian welsh: bangladeshi": "bangladeshi",
    "asian, asian british or asian welsh: chinese": "chinese",
    "asian, asian british or asian welsh: indian": "indian",
    "asian, asian british or asian welsh: pakistani": "pakistani",
    "asian, asian british or asian welsh: other asian": "asian_other",
    "black, black british, black welsh, caribbean or african: african": "black_african",
    "black, black british, black welsh, caribbean or african: caribbean": "black_caribbean",
    "black, black british, black welsh, caribbean or african: other black": "black_other",
    "mixed or multiple ethnic groups: white and asian": "mixed_white_asian",
    "mixed or multiple ethnic groups: white and black african": "mixed_white_black_african",
    "mixed or multiple ethnic groups: white and black caribbean": "mixed_white_black_caribbean",
    "mixed or multiple ethnic groups: other mixed or multiple ethnic groups": "mixed_other",
    "white: english, welsh, scottish, northern irish or british": "white_british",
    "white: irish": "white_irish",
    "white: gypsy or irish traveller": "white_gypsy_traveller",
    "white: roma": "white_roma",
    "white: other white": "white_other",
    "other ethnic group: arab": "arab",
    "other ethnic group: any other ethnic group": "other_ethnic_any_other",
}

# Area kind by code prefix (ONS GSS entity codes).
_KIND_BY_PREFIX: dict[str, str] = {
    "E00": "OA",
    "W00": "OA",
    "E01": "LSOA",
    "W01": "LSOA",
    "E02": "MSOA",
    "W02": "MSOA",
    "E05": "ward",
    "W05": "ward",
    "E14": "constituency",
    "W07": "constituency",
    "E06": "LAD",
    "E07": "LAD",
    "E08": "LAD",
    "E09": "LAD",
    "W06": "LAD",
}

# Code fields in order of preference (smallest geography first) and the kind each implies.
_CODE_FIELDS: tuple[tuple[str, str], ...] = (
    ("OA11CD", "OA"),
    ("OA21CD", "OA"),
    ("LSOA11CD", "LSOA"),
    ("LSOA21CD", "LSOA"),
    ("MSOA11CD", "MSOA"),
    ("MSOA21CD", "MSOA"),
    ("WD13CD", "ward"),
    ("WD22CD", "ward"),
    ("WD23CD", "ward"),
    ("WD24CD", "ward"),
    ("PCON13CD", "constituency"),
    ("PCON24CD", "constituency"),
    ("LAD11CD", "LAD"),
    ("LAD22CD", "LAD"),
    ("LAD24CD", "LAD"),
    ("GeographyCode", ""),
    ("code", ""),
)


@dataclass(frozen=True)
class RowError:
    """A rejected input row: 1-based line number in the file and why."""

    line: int
    reason: str


@dataclass
class CensusTable:
    """Counts per area under canonical column keys, plus any rejected rows."""

    table: str
    vintage: int
    counts: pd.DataFrame
    errors: list[RowError] = field(default_factory=list)


class CensusFormatError(ValueError):
    """The file is not in any census layout we recognise."""


def infer_area_kind(code: str | None = None, field_name: str | None = None) -> str | None:
    """Area kind ("OA", "LSOA", "MSOA", "ward", "constituency", "LAD") from a code or field name."""
    if code:
        kind = _KIND_BY_PREFIX.get(str(code)[:3].upper())
        if kind:
            return kind
    if field_name:
        for name, kind in _CODE_FIELDS:
            if name.lower() == field_name.lower() and kind:
                return kind
    return None


_VINTAGE_FIELD_RE = re.compile(r"^(?:OA|LSOA|MSOA|WD|PCON|LAD|LTLA|UTLA|CTY|WZ)(\d{2})CD$", re.IGNORECASE)


def vintage_from_field(field_name: str | None) -> int | None:
    """The year an ONS code field names ("LSOA21CD" -> 2021, "WD22CD" -> 2022), or None ("code", "GeographyCode")."""
    match = _VINTAGE_FIELD_RE.match(field_name or "")
    return 2000 + int(match.group(1)) if match else None


def _guess_crs(gdf: gpd.GeoDataFrame) -> str:
    """Guess a CRS for a file that declares none: lon/lat if bounds fit, else BNG if they fit."""
    minx, miny, maxx, maxy = gdf.total_bounds
    if -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90:
        return WGS84
    if 0 <= minx <= maxx <= 700_000 and 0 <= miny <= maxy <= 1_300_000:
        return "EPSG:27700"
    raise CensusFormatError("boundary file has no CRS and its coordinates are not lon/lat or BNG")


def read_area_boundaries(
    path: str | Path,
    code_field: str | None = None,
    name_field: str | None = None,
    kind: str | None = None,
) -> gpd.GeoDataFrame:
    """Read area polygons (GeoJSON/GPKG/Shapefile, any CRS) as [code, name, kind, geometry] in WGS84.

    The code field is detected from ONS field names (OA11CD, LSOA21CD, WD22CD, PCON13CD, ...)
    unless given; invalid geometries are repaired with make_valid (polygonal part kept).
    `attrs["code_field"]` names the field used and `attrs["vintage"]` the year it implies (or None).
    """
    check_boundary_archive(path)
    try:
        gdf = gpd.read_file(path, engine="pyogrio")
    except shapely.errors.GEOSException as exc:  # a ring of one point, say: GEOS refuses to build it
        raise CensusFormatError(f"{Path(path).name}: a geometry cannot be built ({exc})") from None
    if "geometry" not in gdf.columns or not isinstance(gdf, gpd.GeoDataFrame):
        raise CensusFormatError(f"{Path(path).name}: no layer with geometries (a table without shapes?)")
    if gdf.empty:
        raise CensusFormatError(f"{path}: no features")
    _refuse_non_polygons(gdf)
    columns = {c.lower(): c for c in gdf.columns}
    field_kind: str | None = None
    if code_field is None:
        for name, fkind in _CODE_FIELDS:
            if name.lower() in columns:
                code_field = columns[name.lower()]
                field_kind = fkind or None
                break
        if code_field is None:
            raise CensusFormatError(
                f"{path}: no area code field found (looked for {[n for n, _ in _CODE_FIELDS]}); "
                f"pass code_field= (fields present: {list(gdf.columns.drop('geometry'))})"
            )
    elif code_field not in gdf.columns:
        raise CensusFormatError(f"{path}: code field {code_field!r} not in {list(gdf.columns)}")
    else:
        field_kind = infer_area_kind(field_name=code_field)
    if name_field is None:
        stem = code_field[:-2] if code_field.upper().endswith("CD") else None
        for candidate in ([f"{stem}NM"] if stem else []) + ["name", "NAME", "Name"]:
            if candidate.lower() in columns:
                name_field = columns[candidate.lower()]
                break
    codes = gdf[code_field].astype(str).str.strip()
    if kind is None:
        kind = infer_area_kind(code=codes.iloc[0]) or field_kind or "area"
    names = gdf[name_field].astype(str) if name_field else codes
    if gdf.crs is None:
        gdf = gdf.set_crs(_guess_crs(gdf))
    geoms = gdf.geometry
    invalid = ~geoms.is_valid
    if invalid.any():
        repaired = geoms[invalid].make_valid()
        # Keep only the polygonal part of any GeometryCollection produced by make_valid.
        repaired = repaired.apply(_polygonal_part)
        geoms = geoms.copy()
        geoms[invalid] = repaired
    out = gpd.GeoDataFrame(
        {"code": codes.values, "name": names.values, "kind": kind},
        geometry=gpd.GeoSeries(geoms.values, crs=gdf.crs),
    )
    if not CRS(out.crs).equals(CRS(WGS84)):
        out = out.to_crs(WGS84)
    out.attrs["code_field"] = code_field
    out.attrs["vintage"] = vintage_from_field(code_field)
    return out


VECTOR_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".kml", ".gml", ".fgb")
MAX_ARCHIVE_BYTES = 4 * 1024**3


def check_boundary_archive(path: str | Path) -> None:
    """Refuse a zip whose members escape its folder (`../`, absolute paths: zip-slip), that inflates past 4 GiB, or holds no vector layer."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise CensusFormatError(f"{Path(path).name}: not a readable zip ({exc})") from None
    for member in members:
        name = member.filename.replace("\\", "/")
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in name.split("/"):
            raise CensusFormatError(f"{Path(path).name}: member {member.filename!r} points outside the archive; refused")
    if sum(m.file_size for m in members) > MAX_ARCHIVE_BYTES:
        raise CensusFormatError(f"{Path(path).name}: inflates to more than {MAX_ARCHIVE_BYTES // 1024**3} GiB; refused")
    if not any(m.filename.lower().endswith(VECTOR_SUFFIXES) for m in members):
        raise CensusFormatError(f"{Path(path).name}: the zip holds no boundary layer (looked for {', '.join(VECTOR_SUFFIXES)})")


def _refuse_non_polygons(gdf: gpd.GeoDataFrame) -> None:
    """Every feature must be a polygon with at least one ring of four or more points (GeoJSON's rule); name the first that is not."""
    for position, geom in enumerate(gdf.geometry.array):
        problem = None
        if geom is None or geom.is_empty:
            problem = "has no geometry"
        elif geom.geom_type not in ("Polygon", "MultiPolygon"):
            problem = f"is a {geom.geom_type}, not a polygon"
        else:
            rings = [p.exterior for p in getattr(geom, "geoms", [geom])]
            if any(len(r.coords) < 4 for r in rings) or not np.isfinite(shapely.get_coordinates(geom)).all():
                problem = "has a ring with fewer than four points or a coordinate that is not a number"
        if problem:
            raise CensusFormatError(f"feature {position + 1} {problem}")


def _polygonal_part(geom):  # type: ignore[no-untyped-def]
    """Polygonal part of a geometry (drops stray lines/points left by make_valid)."""
    from shapely.geometry import GeometryCollection, MultiPolygon, Polygon

    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    if isinstance(geom, GeometryCollection):
        polys: list[Polygon] = []
        for part in geom.geoms:
            if isinstance(part, Polygon):
                polys.append(part)
            elif isinstance(part, MultiPolygon):
                polys.extend(part.geoms)
        if len(polys) == 1:
            return polys[0]
        return MultiPolygon(polys)
    return geom


def _read_header(path: Path) -> list[str]:
    """First CSV line as column names."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh))


def _read_raw(path: Path, text_columns: list[str]) -> pd.DataFrame:
    """Read a CSV (text columns as str, others parsed by pandas), keeping a 1-based `_line` column."""
    raw = pd.read_csv(
        path,
        dtype={c: str for c in text_columns},
        keep_default_na=False,
        na_values=[],
        skip_blank_lines=False,
        encoding="utf-8-sig",
    )
    raw["_line"] = np.arange(2, len(raw) + 2)
    blank = np.ones(len(raw), dtype=bool)
    for col in raw.columns.drop("_line"):
        series = raw[col]
        if pd.api.types.is_integer_dtype(series.dtype):
            return raw  # a column with no missing values: no row is blank
        blank &= (series.isna() | (series.astype(str).str.strip() == "")).to_numpy()
    return raw[~blank]


def _detect_layout(header: list[str]) -> tuple[str, int, str, dict[str, str]]:
    """Return (table, vintage, code column, {file column: canonical key}) for a header."""
    cols = [h.strip() for h in header]
    lower = {c.lower(): c for c in cols}
    if "geographycode" in lower and "ks201ew0001" in lower:
        mapping = {}
        for i, key in enumerate(KS201_KEYS, start=1):
            col = lower.get(f"ks201ew{i:04d}")
            if col is None:
                raise CensusFormatError(f"KS201EW layout is missing column KS201EW{i:04d}")
            mapping[col] = key
        return "KS201EW", 2011, lower["geographycode"], mapping
    if "persons" in lower and "whitebrit" in lower:
        code_col = next((lower[c] for c in ("oa11cd", "lsoa11cd", "msoa11cd") if c in lower), None)
        if code_col is None:
            raise CensusFormatError("MLID layout needs an OA11CD/LSOA11CD/MSOA11CD column")
        mapping = {lower[k.lower()]: v for k, v in MLID_COLUMNS.items() if k.lower() in lower}
        return "KS201EW", 2011, code_col, mapping
    stripped = {}
    for c in cols:
        label = re.sub(
            r"^ethnic group( \(\d+ categories\))?:\s*", "", c.strip(), flags=re.IGNORECASE
        ).lower()
        if label in TS021_LABELS:
            stripped[c] = TS021_LABELS[label]
    if "total" in stripped.values() and len(stripped) >= 3:
        code_col = next(
            (
                lower[c]
                for c in (
                    "lsoa21cd",
                    "oa21cd",
                    "msoa21cd",
                    "geography code",
                    "geographycode",
                    "code",
                )
                if c in lower
            ),
            None,
        )
        if code_col is None:
            raise CensusFormatError(
                "TS021 layout needs an area code column (LSOA21CD, OA21CD, geography code)"
            )
        return "TS021", 2021, code_col, stripped
    raise CensusFormatError(
        "unrecognised census layout: expected KS201EW (GeographyCode, KS201EW0001..), "
        "MLID-derived (OA11CD, Persons, WhiteBrit, ..) or TS021 (LSOA21CD, 'Total: All usual residents', ..)"
    )


def read_census_table(path: str | Path) -> CensusTable:
    """Read an ethnic-group census table, auto-detecting KS201EW, MLID-derived or TS021 layouts.

    Bad rows (missing/duplicate code, non-integer or negative counts) are reported with their
    1-based file line number in `errors` and left out of `counts`; nothing is dropped silently.
    """
    path = Path(path)
    try:
        header = _read_header(path)
    except StopIteration:
        raise CensusFormatError(f"{path}: empty file") from None
    table, vintage, code_col, mapping = _detect_layout(header)
    raw = _read_raw(path, [code_col])
    codes = raw[code_col].str.strip()
    lines = raw["_line"].to_numpy()
    bad = np.zeros(len(raw), dtype=bool)
    reasons: dict[int, str] = {}

    def flag(mask: np.ndarray, reason_for) -> None:  # type: ignore[no-untyped-def]
        for pos in np.flatnonzero(mask & ~bad):
            reasons[int(pos)] = reason_for(int(pos))
        bad[mask] = True

    flag((codes == "").to_numpy(), lambda pos: "missing area code")
    values: dict[str, np.ndarray] = {}
    for col, key in mapping.items():
        series = raw[col]
        if pd.api.types.is_integer_dtype(series.dtype):
            arr = series.to_numpy(dtype=float)  # fast path: pandas parsed every value as an integer
            text = series
            nonint = np.zeros(len(arr), dtype=bool)
        else:
            text = series.astype(str).str.strip()
            if pd.api.types.is_float_dtype(series.dtype):
                text = text.where(series.notna(), "")
            arr = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            nonint = np.isnan(arr) | (arr != np.floor(arr))
        flag(
            nonint,
            lambda pos, c=col, t=text: f"column {c!r}: {t.iloc[pos]!r} is not a whole number",
        )
        neg = ~nonint & (arr < 0)
        flag(neg, lambda pos, c=col, t=text: f"column {c!r}: negative count {t.iloc[pos]}")
        values[key] = arr
    dup = codes.duplicated(keep="first").to_numpy() & (codes != "").to_numpy()
    flag(dup, lambda pos: f"duplicate area code {codes.iloc[pos]!r}")
    keep = ~bad
    counts = pd.DataFrame(
        {key: np.nan_to_num(arr[keep]).astype(np.int64) for key, arr in values.items()},
        index=pd.Index(codes.to_numpy()[keep], name="code"),
    )
    if table == "KS201EW":
        if all(k in counts.columns for k in MIXED_DETAIL):
            counts["mixed"] = counts[list(MIXED_DETAIL)].sum(axis=1)
        ordered = [k for k in (*KS201_KEYS, "mixed") if k in counts.columns]
        counts = counts[ordered]
    else:
        if "other_ethnic_any_other" in counts.columns:
            # Detailed TS021: "other_ethnic" is the broad Other group; keep the detail under its own key.
            pass
    errors = [RowError(int(lines[pos]), reasons[pos]) for pos in sorted(reasons)]
    return CensusTable(table=table, vintage=vintage, counts=counts, errors=errors)


def read_lsoa_lookup(path: str | Path) -> pd.DataFrame:
    """Read the ONS LSOA 2011 -> 2021 lookup as [lsoa11, lsoa21, change] (CHGIND U/S/M/X)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    cols = {c.upper(): c for c in df.columns}
    needed = ("LSOA11CD", "LSOA21CD")
    missing = [c for c in needed if c not in cols]
    if missing:
        raise CensusFormatError(f"{path}: lookup is missing columns {missing}")
    out = pd.DataFrame(
        {
            "lsoa11": df[cols["LSOA11CD"]].str.strip(),
            "lsoa21": df[cols["LSOA21CD"]].str.strip(),
            "change": df[cols["CHGIND"]].str.strip() if "CHGIND" in cols else "",
        }
    )
    for extra in ("LSOA11NM", "LSOA21NM", "LAD22CD", "LAD22NM"):
        if extra in cols:
            out[extra.lower()] = df[cols[extra]]
    return out
