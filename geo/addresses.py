"""Read address points: OpenStreetMap extracts, OS Code-Point Open postcodes, generic CSV.

All readers return GeoDataFrames in WGS84 (EPSG:4326) with a Point geometry.
Address frames share the columns: uprn, lines (tuple of str), postcode, street,
house_number, flat, building_key, geometry. `building_key` groups flats that
share one entrance/building; a house's building_key is its own key.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geo.census import RowError

WGS84 = "EPSG:4326"
BNG = "EPSG:27700"
ADDRESS_COLUMNS = ("uprn", "lines", "postcode", "street", "house_number", "flat", "building_key")
MAX_FLATS_PER_BUILDING = 500

Progress = Callable[[int, int | None], None]

_POSTCODE_RE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)\s*([0-9][A-Z]{2})$")


def normalise_postcode(text: str | None) -> str:
    """Upper-case a UK postcode with a single space before the inward code ("nw12ab" -> "NW1 2AB")."""
    if not text:
        return ""
    compact = re.sub(r"\s+", "", str(text)).upper()
    match = _POSTCODE_RE.match(compact)
    if match:
        return f"{match.group(1)} {match.group(2)}"
    return compact


def expand_flats(spec: str) -> list[str]:
    """Expand an OSM addr:flats value ("1-12", "1;3;5-7", "A-C") into flat labels."""
    labels: list[str] = []
    for part in re.split(r"[;,]", spec):
        part = part.strip()
        if not part:
            continue
        rng = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        letters = re.fullmatch(r"([A-Za-z])\s*-\s*([A-Za-z])", part)
        if rng:
            lo, hi = int(rng.group(1)), int(rng.group(2))
            if lo <= hi and hi - lo < MAX_FLATS_PER_BUILDING:
                labels.extend(str(i) for i in range(lo, hi + 1))
            else:
                labels.append(part)
        elif letters and letters.group(1).upper() <= letters.group(2).upper():
            labels.extend(
                chr(c)
                for c in range(ord(letters.group(1).upper()), ord(letters.group(2).upper()) + 1)
            )
        else:
            labels.append(part)
        if len(labels) > MAX_FLATS_PER_BUILDING:
            return labels[:MAX_FLATS_PER_BUILDING]
    return labels


def _address_lines(
    flat: str | None, house_name: str | None, number: str, street: str
) -> tuple[str, ...]:
    """Postal-style lines: optional flat, optional building name, "number street"."""
    lines: list[str] = []
    if flat:
        lines.append(flat)
    if house_name:
        lines.append(house_name)
    lines.append(f"{number} {street}".strip())
    return tuple(lines)


@dataclass
class _OsmAddress:
    key: str
    number: str
    street: str
    postcode: str
    flats: str
    flat: str
    house_name: str
    lon: float
    lat: float


def read_osm_addresses(pbf_path: str | Path, progress: Progress | None = None) -> gpd.GeoDataFrame:
    """Address points from an OSM file: addressed nodes and building ways (centroids).

    Flats come from addr:flats (one row per flat) or from several address nodes inside one
    building way; both share `building_key`. `uprn` holds a stable OSM key ("osm:n123",
    "osm:w456", "osm:w456/3" for an expanded flat) because OSM has no UPRNs.
    Multipolygon building relations are not read (rare for addresses).
    """
    import osmium

    processor = (
        osmium.FileProcessor(str(pbf_path))
        .with_locations()
        .with_filter(osmium.filter.KeyFilter("addr:housenumber", "building", "addr:flats"))
    )
    addresses: list[_OsmAddress] = []
    # Closed ways are gathered as flat coordinate lists and turned into polygons in one
    # vectorised shapely call afterwards (much faster than one Polygon() per way).
    way_keys: list[str] = []
    way_tags: list[dict[str, str]] = []
    way_is_building: list[bool] = []
    flat_lon: list[float] = []
    flat_lat: list[float] = []
    ring_ids: list[int] = []
    done = 0
    wanted = (
        "addr:housenumber",
        "addr:street",
        "addr:place",
        "addr:postcode",
        "addr:flats",
        "addr:unit",
        "addr:flat",
        "addr:housename",
    )
    for obj in processor:
        done += 1
        if progress is not None and done % 20_000 == 0:
            progress(done, None)
        tags = obj.tags
        if obj.is_node():
            if "addr:housenumber" not in tags:
                continue
            loc = obj.location
            if not loc.valid():
                continue
            addresses.append(_osm_address(f"osm:n{obj.id}", tags, loc.lon, loc.lat))
        elif obj.is_way():
            nodes = obj.nodes
            if len(nodes) < 4 or nodes[0].ref != nodes[-1].ref:
                continue
            try:
                lons = [n.lon for n in nodes]
                lats = [n.lat for n in nodes]
            except osmium.InvalidLocationError:
                continue
            ring = len(way_keys)
            way_keys.append(f"osm:w{obj.id}")
            way_tags.append({k: tags[k] for k in wanted if k in tags})
            way_is_building.append("building" in tags)
            flat_lon.extend(lons)
            flat_lat.extend(lats)
            ring_ids.extend([ring] * len(lons))
    building_ids: list[str] = []
    building_polys: list[Any] = []
    building_tags: list[tuple[str, str]] = []  # (street, postcode) of each building way
    if way_keys:
        rings = shapely.linearrings(
            np.column_stack([flat_lon, flat_lat]), indices=np.asarray(ring_ids)
        )
        polys = shapely.polygons(rings)
        invalid = ~shapely.is_valid(polys)
        polys[invalid] = shapely.make_valid(polys[invalid])
        centroids = shapely.centroid(polys)
        inside = shapely.contains_properly(polys, centroids)
        points = np.where(inside, centroids, shapely.point_on_surface(polys))
        for i, key in enumerate(way_keys):
            poly, tags_i = polys[i], way_tags[i]
            if poly is None or shapely.is_empty(poly):
                continue
            if way_is_building[i]:
                building_ids.append(key)
                building_polys.append(poly)
                building_tags.append(
                    (tags_i.get("addr:street", ""), tags_i.get("addr:postcode", ""))
                )
            if "addr:housenumber" in tags_i:
                addresses.append(
                    _osm_address(key, tags_i, shapely.get_x(points[i]), shapely.get_y(points[i]))
                )
    if progress is not None:
        progress(done, done)
    return _osm_frame(addresses, building_ids, building_polys, building_tags)


def _osm_address(key: str, tags: Any, lon: float, lat: float) -> _OsmAddress:
    """Pick the address tags of one OSM object."""
    return _OsmAddress(
        key=key,
        number=tags.get("addr:housenumber", "").strip(),
        street=(tags.get("addr:street") or tags.get("addr:place") or "").strip(),
        postcode=normalise_postcode(tags.get("addr:postcode")),
        flats=tags.get("addr:flats", "").strip(),
        flat=(tags.get("addr:unit") or tags.get("addr:flat") or "").strip(),
        house_name=(tags.get("addr:housename") or "").strip(),
        lon=lon,
        lat=lat,
    )


def _osm_frame(
    addresses: list[_OsmAddress],
    building_ids: list[str],
    building_polys: list[Any],
    building_tags: list[tuple[str, str]],
) -> gpd.GeoDataFrame:
    """Assign nodes to buildings, expand flats, and build the output frame."""
    n = len(addresses)
    building_key = np.array([a.key for a in addresses], dtype=object)
    if n and building_polys:
        lons = np.array([a.lon for a in addresses])
        lats = np.array([a.lat for a in addresses])
        is_node = np.array([a.key.startswith("osm:n") for a in addresses])
        tree = shapely.STRtree(building_polys)
        pts = shapely.points(lons[is_node], lats[is_node])
        node_pos = np.flatnonzero(is_node)
        p_idx, b_idx = tree.query(pts, predicate="within")
        if len(p_idx):
            areas = shapely.area(np.asarray(building_polys, dtype=object)[b_idx])
            order = np.lexsort((areas, p_idx))  # smallest building first for each point
            p_idx, b_idx = p_idx[order], b_idx[order]
            first = np.r_[True, p_idx[1:] != p_idx[:-1]]
            for p, b in zip(p_idx[first], b_idx[first], strict=True):
                pos = node_pos[p]
                building_key[pos] = building_ids[b]
                addr = addresses[pos]
                street, postcode = building_tags[b]
                if not addr.street and street:
                    addr.street = street
                if not addr.postcode and postcode:
                    addr.postcode = normalise_postcode(postcode)
    # A building way that also carries the same number/street as a node inside it is the same door.
    node_doors = {
        (building_key[i], a.number.upper(), a.street.upper())
        for i, a in enumerate(addresses)
        if a.key.startswith("osm:n")
    }
    rows: dict[str, list[Any]] = {c: [] for c in (*ADDRESS_COLUMNS, "lon", "lat")}
    for i, a in enumerate(addresses):
        if not a.number or not a.street:
            continue
        if a.key.startswith("osm:w") and (a.key, a.number.upper(), a.street.upper()) in node_doors:
            continue
        flats = expand_flats(a.flats) if a.flats else []
        if a.flat:
            flats = [a.flat]
        for label in flats or [None]:
            flat = _flat_label(label)
            rows["uprn"].append(f"{a.key}/{label}" if label is not None and a.flats else a.key)
            rows["lines"].append(_address_lines(flat, a.house_name, a.number, a.street))
            rows["postcode"].append(a.postcode)
            rows["street"].append(a.street)
            rows["house_number"].append(a.number)
            rows["flat"].append(flat)
            rows["building_key"].append(building_key[i])
            rows["lon"].append(a.lon)
            rows["lat"].append(a.lat)
    lon = np.asarray(rows.pop("lon"), dtype=float)
    lat = np.asarray(rows.pop("lat"), dtype=float)
    frame = pd.DataFrame(rows)
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs=WGS84)


def _flat_label(label: str | None) -> str | None:
    """Label a flat: "3" -> "Flat 3"; labels that already name their kind ("Apartment 2", "Unit B") are kept."""
    if not label:
        return None
    if re.match(r"(?i)^(flat|apartment|apt|unit|room|studio|maisonette|floor|basement)\b", label):
        return label
    return f"Flat {label}"


CODEPOINT_COLUMNS = (
    "Postcode",
    "Positional_quality_indicator",
    "Eastings",
    "Northings",
    "Country_code",
    "NHS_regional_HA_code",
    "NHS_HA_code",
    "Admin_county_code",
    "Admin_district_code",
    "Admin_ward_code",
)


def _is_number(text: str) -> bool:
    """Whether a CSV cell parses as a number."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_codepoint(
    csv_path: str | Path, headers_path: str | Path | None = None
) -> gpd.GeoDataFrame:
    """Read OS Code-Point Open (no header line, BNG eastings/northings) as postcode points in WGS84.

    Returns [postcode, ward_code, district_code, quality, line, problem, geometry]; a postcode
    without usable coordinates (eastings and northings 0, or text that is not a number) gets an
    empty geometry and says why in `problem`, rather than a false point. A header line, which
    OS files do not have but hand-made ones do, is skipped; `attrs["header_line"]` says so.
    """
    names = list(CODEPOINT_COLUMNS)
    if headers_path is not None:
        with open(headers_path, newline="", encoding="utf-8-sig") as fh:
            header_rows = list(csv.reader(fh))
        if len(header_rows) >= 2 and len(header_rows[1]) >= 10:
            names = [h.strip() for h in header_rows[1]]
    raw = pd.read_csv(csv_path, header=None, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    raw = raw.iloc[:, : len(names)]
    raw.columns = names[: raw.shape[1]]
    raw["_line"] = np.arange(1, len(raw) + 1)
    header_line = None
    if len(raw) and raw.shape[1] > 3 and not _is_number(str(raw.iloc[0, 2]).strip()) and not _POSTCODE_RE.match(
        re.sub(r"\s+", "", str(raw.iloc[0, 0])).upper()
    ):
        header_line = 1
        raw = raw.iloc[1:]
    lookup = {c.lower(): c for c in raw.columns}

    def col(*cands: str) -> pd.Series:
        for cand in cands:
            if cand.lower() in lookup:
                return raw[lookup[cand.lower()]]
        return raw.iloc[:, CODEPOINT_COLUMNS.index(cands[0])]

    east_text = col("Eastings").str.strip()
    north_text = col("Northings").str.strip()
    east = pd.to_numeric(east_text, errors="coerce").to_numpy(dtype=float)
    north = pd.to_numeric(north_text, errors="coerce").to_numpy(dtype=float)
    unreadable = np.isnan(east) | np.isnan(north)
    zero = ~unreadable & (east == 0) & (north == 0)
    has_xy = ~(unreadable | zero)
    problem: list[str | None] = [None] * len(raw)
    for pos in np.flatnonzero(~has_xy):
        e, n = east_text.iloc[pos], north_text.iloc[pos]
        problem[pos] = (
            f"eastings/northings {e}, {n}: no coordinates (OS gives 0 to postcodes it cannot place)"
            if zero[pos]
            else f"eastings/northings {e!r}, {n!r} are not numbers"
        )
    points = gpd.GeoSeries(gpd.points_from_xy(east, north), crs=BNG).to_crs(WGS84)
    points[~has_xy] = None
    frame = gpd.GeoDataFrame(
        {
            "postcode": [normalise_postcode(p) for p in col("Postcode")],
            "ward_code": col("Admin_ward_code").str.strip().to_numpy(),
            "district_code": col("Admin_district_code").str.strip().to_numpy(),
            "quality": pd.to_numeric(
                col("Positional_quality_indicator"), errors="coerce"
            ).to_numpy(),
            "line": raw["_line"].to_numpy(),
            "problem": problem,
        },
        geometry=points.to_numpy(),
        crs=WGS84,
    )
    frame.attrs["header_line"] = header_line
    return frame


def read_codepoint_checked(csv_path: str | Path) -> tuple[gpd.GeoDataFrame, list[RowError], int | None]:
    """Code-Point Open postcodes with a point, the rows without one (by file line), and any header line."""
    frame = read_codepoint(csv_path)
    bad = frame["problem"].notna().to_numpy()
    errors = [RowError(int(line), str(reason)) for line, reason in zip(frame["line"][bad], frame["problem"][bad], strict=True)]
    good = frame[~bad].drop(columns=["problem"])
    return good, errors, frame.attrs.get("header_line")


ADDRESS_FORMAT_HELP = {
    "osm": "an OpenStreetMap extract (.osm.pbf)",
    "codepoint": "OS Code-Point Open (a CSV of postcode, quality, eastings, northings, ...)",
    "csv": "a CSV of points with address lines and lon/lat or easting/northing columns",
}


def detect_address_format(path: str | Path) -> str | None:
    """Guess an address file's format from its extension and first bytes: "osm", "codepoint", "csv" or None."""
    path = Path(path)
    name = path.name.lower()
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if b"OSMHeader" in head[:64] or (head.lstrip().startswith(b"<?xml") and b"<osm" in head) or head.lstrip().startswith(b"<osm"):
        return "osm"
    if name.endswith((".pbf", ".osm", ".o5m", ".osm.bz2")) and not head.isascii():
        return "osm"
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)][:3]
    if not rows or len(rows[0]) < 3:
        return None
    first = [re.sub(r"[^a-z0-9]", "", c.lower()) for c in rows[0]]
    has = set(first)
    coordinates = ({"lon", "lat"} <= has or {"longitude", "latitude"} <= has or {"lng", "lat"} <= has
                   or bool({"easting", "eastings"} & has and {"northing", "northings"} & has) or {"x", "y"} <= has)
    address = bool({"lines", "address", "addressline1", "address1", "line1"} & has)
    if coordinates and address:
        return "csv"
    data = rows[1:] if ("postcode" in has or "pc" in has) else rows
    if data and all(
        len(r) >= 4 and _POSTCODE_RE.match(re.sub(r"\s+", "", r[0]).upper()) and _is_number(r[1].strip() or "x") for r in data
    ):
        return "codepoint"
    return None


def address_format_mismatch(path: str | Path, fmt: str) -> str | None:
    """A hint naming the right format when the file plainly is another one (None when it fits or is unclear)."""
    detected = detect_address_format(path)
    if detected is None or detected == fmt:
        return None
    return f"{Path(path).name} looks like {ADDRESS_FORMAT_HELP[detected]}, not {fmt}: use --format {detected}"


def _split_lines(text: str) -> tuple[str, ...]:
    """Split a one-cell address ("Flat 1|12 High St" or "Flat 1, 12 High St") into lines."""
    sep = "|" if "|" in text else ("\n" if "\n" in text else ",")
    return tuple(p.strip() for p in text.split(sep) if p.strip())


def read_address_csv(
    path: str | Path, crs: str | int | None = None
) -> tuple[gpd.GeoDataFrame, list[RowError]]:
    """Read a generic address CSV of points; returns (addresses in WGS84, rejected rows by line).

    Columns: uprn (optional); `lines` (separated by "|" or ",") or address_line_1..6 /
    "Address 1".."Address 6"; postcode; coordinates as lon/lat (or longitude/latitude),
    easting/northing (BNG), or x/y with `crs=`. Optional street, house_number, flat, building_key.
    """
    raw = pd.read_csv(
        path, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding="utf-8-sig"
    )
    raw["_line"] = np.arange(2, len(raw) + 2)
    cols = {re.sub(r"[^a-z0-9]", "", c.lower()): c for c in raw.columns}

    def find(*cands: str) -> str | None:
        for cand in cands:
            if cand in cols:
                return cols[cand]
        return None

    if find("lon", "longitude", "lng") and find("lat", "latitude"):
        xcol, ycol, src_crs = find("lon", "longitude", "lng"), find("lat", "latitude"), WGS84
    elif find("easting", "eastings") and find("northing", "northings"):
        xcol, ycol, src_crs = find("easting", "eastings"), find("northing", "northings"), BNG
    elif find("x") and find("y"):
        if crs is None:
            raise ValueError("x/y coordinates need an explicit crs= (e.g. 'EPSG:27700')")
        xcol, ycol, src_crs = find("x"), find("y"), CRS.from_user_input(crs).to_string()
    else:
        raise ValueError("address CSV needs lon/lat, easting/northing or x/y columns")
    line_cols = [
        c
        for i in range(1, 7)
        for c in [find(f"addressline{i}", f"address{i}", f"line{i}")]
        if c is not None
    ]
    lines_col = find("lines", "address")
    if not line_cols and lines_col is None:
        raise ValueError("address CSV needs a `lines` column or address_line_1.. columns")
    errors: list[RowError] = []
    keep: list[int] = []
    out_lines: list[tuple[str, ...]] = []
    xs = pd.to_numeric(raw[xcol].str.strip(), errors="coerce").to_numpy(dtype=float)
    ys = pd.to_numeric(raw[ycol].str.strip(), errors="coerce").to_numpy(dtype=float)
    records = raw.to_dict("records")
    for pos, rec in enumerate(records):
        if all(str(v).strip() == "" for k, v in rec.items() if k != "_line"):
            continue
        line_no = int(rec["_line"])
        lines = (
            tuple(str(rec[c]).strip() for c in line_cols if str(rec[c]).strip())
            if line_cols
            else _split_lines(str(rec[lines_col]))
        )
        if not lines:
            errors.append(RowError(line_no, "no address lines"))
            continue
        if np.isnan(xs[pos]) or np.isnan(ys[pos]):
            errors.append(
                RowError(line_no, f"coordinates {rec[xcol]!r}, {rec[ycol]!r} are not numbers")
            )
            continue
        if xs[pos] == 0 and ys[pos] == 0:
            errors.append(RowError(line_no, f"coordinates {rec[xcol]!r}, {rec[ycol]!r}: no position (0, 0)"))
            continue
        if src_crs == WGS84 and not (-180 <= xs[pos] <= 180 and -90 <= ys[pos] <= 90):
            errors.append(RowError(line_no, f"lon/lat {xs[pos]}, {ys[pos]} out of range"))
            continue
        keep.append(pos)
        out_lines.append(lines)
    sel = raw.iloc[keep]

    def text(name: str | None) -> list[Any]:
        if name is None:
            return [None] * len(sel)
        return [v.strip() or None for v in sel[name]]

    uprn = text(find("uprn", "id"))
    frame = pd.DataFrame(
        {
            "uprn": uprn,
            "lines": out_lines,
            "postcode": [normalise_postcode(p) for p in text(find("postcode", "postalcode"))],
            "street": text(find("street")),
            "house_number": text(find("housenumber", "number")),
            "flat": text(find("flat")),
            "building_key": text(find("buildingkey", "building")),
        }
    )
    # Without an explicit building key every address is its own building (by uprn, else row line).
    fallback = [u or f"line:{n}" for u, n in zip(uprn, sel["_line"], strict=True)]
    frame["building_key"] = [b or f for b, f in zip(frame["building_key"], fallback, strict=True)]
    points = gpd.GeoSeries(gpd.points_from_xy(xs[keep], ys[keep]), crs=src_crs)
    if src_crs != WGS84:
        points = points.to_crs(WGS84)
    frame["line"] = sel["_line"].to_numpy()
    return gpd.GeoDataFrame(frame, geometry=points.to_numpy(), crs=WGS84), errors
