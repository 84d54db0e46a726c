"""Read the electoral register (CSV) and match its entries to address points.

Accepted column names (case, spaces, underscores and dots are ignored):

- polling district (required): "PD", "Polling District", "Polling District Code", "PD Code"
- elector number (required, integer): "ENO", "Elector Number", "Elector No", "Number"
- suffix (optional): "Suffix", "ENO Suffix", "Elector Number Suffix", "Sfx"
- franchise markers (optional): "Franchise", "Franchise Flag", "Franchise Marker", "Markers", "Flags"
- date of attainment (optional): "DOA", "Date of Attainment", "Attainment Date"
- surname (required): "Surname", "Last Name", "Family Name"
- forenames (required): "Forenames", "Forename", "First Names", "First Name", "Given Names"
- address lines 1-6: "Address 1".."Address 6", "Address Line 1".., "Address1"..,
  "address_line_1".., "Line 1"..
- postcode: "Postcode", "Post Code"
- UPRN (optional): "UPRN", "Property UPRN"

Output columns: polling_district, elector_number (int), suffix (str, "" when absent),
elector_id ("PD-ENO" or "PD-ENO/suffix"), franchise, attainment_date, surname, forenames,
address_lines (tuple), postcode, uprn (str or None), line (1-based file line).

The register is personal data: it must only be used for electoral purposes, and it holds no
ethnicity (nor may anything derived from it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo.addresses import normalise_postcode
from geo.census import RowError

MAX_FIELD_CHARS = 1000
# Control characters (C0, DEL, C1; NUL included) and bidi embeddings/overrides/isolates: never in a name
# (server/plain_text.py refuses the same set in API input).
UNSAFE_TEXT_CHARACTERS = "\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_UNSAFE_TEXT = re.compile(f"[{UNSAFE_TEXT_CHARACTERS}]")
"""Longest value any register field may hold; a longer one makes its row bad (a 10 MB "name" is an attack, not a name)."""

REGISTER_COLUMNS = (
    "polling_district",
    "elector_number",
    "suffix",
    "elector_id",
    "franchise",
    "attainment_date",
    "surname",
    "forenames",
    "address_lines",
    "postcode",
    "uprn",
    "line",
)

_ALIASES: dict[str, tuple[str, ...]] = {
    "polling_district": ("pd", "pollingdistrict", "pollingdistrictcode", "pdcode", "district"),
    "elector_number": ("eno", "electornumber", "electorno", "number", "electornum"),
    "suffix": ("suffix", "enosuffix", "electornumbersuffix", "sfx", "electorsuffix"),
    "franchise": (
        "franchise",
        "franchiseflag",
        "franchisemarker",
        "markers",
        "flags",
        "electormarkers",
    ),
    "attainment_date": ("doa", "dateofattainment", "attainmentdate", "dateofbirth18"),
    "surname": ("surname", "lastname", "familyname", "electorsurname"),
    "forenames": (
        "forenames",
        "forename",
        "firstnames",
        "firstname",
        "givennames",
        "electorforename",
    ),
    "postcode": ("postcode", "postalcode"),
    "uprn": ("uprn", "propertyuprn"),
}

# Street-type words and their canonical (Royal Mail style) abbreviations.
_ABBREVIATIONS = {
    "STREET": "ST",
    "ROAD": "RD",
    "AVENUE": "AVE",
    "AV": "AVE",
    "LANE": "LN",
    "PLACE": "PL",
    "SQUARE": "SQ",
    "TERRACE": "TER",
    "TERR": "TER",
    "GARDENS": "GDNS",
    "GRDNS": "GDNS",
    "CRESCENT": "CRES",
    "CLOSE": "CL",
    "DRIVE": "DR",
    "COURT": "CT",
    "GROVE": "GR",
    "PARK": "PK",
    "MEWS": "MWS",
    "HOUSE": "HO",
    "ESTATE": "EST",
    "SAINT": "ST",
    "NORTH": "N",
    "SOUTH": "S",
    "EAST": "E",
    "WEST": "W",
    "MANSIONS": "MANS",
    "BUILDINGS": "BLDGS",
    "WALK": "WLK",
    "HILL": "HL",
    "GREEN": "GRN",
    "PARADE": "PDE",
    "ROW": "ROW",
    "WAY": "WAY",
    "ROUNDABOUT": "RBT",
}
_FLAT_WORDS = {"FLAT", "FLT", "APARTMENT", "APT", "UNIT", "NO", "NUMBER", "ROOM"}
_FLOOR_WORDS = {"GROUND", "FIRST", "SECOND", "THIRD", "BASEMENT", "TOP", "FLOOR", "GF", "FF"}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def read_register_csv(path: str | Path) -> tuple[pd.DataFrame, list[RowError]]:
    """Read a register CSV in the usual UK layout; returns (entries, rejected rows by file line)."""
    raw = pd.read_csv(
        path, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding="utf-8-sig"
    )
    lookup = {_key(c): c for c in raw.columns}
    found: dict[str, str] = {}
    for canonical, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in lookup:
                found[canonical] = lookup[alias]
                break
    missing = [
        c for c in ("polling_district", "elector_number", "surname", "forenames") if c not in found
    ]
    if missing:
        raise ValueError(
            f"register is missing required columns {missing}; columns present: {list(raw.columns)} "
            "(see geo.register docstring for accepted names)"
        )
    address_cols: list[str] = []
    for i in range(1, 7):
        for alias in (f"address{i}", f"addressline{i}", f"line{i}", f"addr{i}"):
            if alias in lookup:
                address_cols.append(lookup[alias])
                break
    if not address_cols:
        raise ValueError("register has no address columns ('Address 1'.. or 'Address Line 1'..)")
    rows: dict[str, list[Any]] = {c: [] for c in REGISTER_COLUMNS}
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    get = {k: raw[v].to_numpy() for k, v in found.items()}
    addr = [raw[c].to_numpy() for c in address_cols]
    for pos in range(len(raw)):
        line = pos + 2
        values = {k: str(v[pos]).strip() for k, v in get.items()}
        lines = tuple(str(a[pos]).strip() for a in addr if str(a[pos]).strip())
        if not any(values.values()) and not lines:
            continue  # blank line
        too_long = [k for k, v in values.items() if len(v) > MAX_FIELD_CHARS] + (
            ["address"] if any(len(a) > MAX_FIELD_CHARS for a in lines) else []
        )
        if too_long:
            errors.append(RowError(line, f"{', '.join(too_long)} longer than {MAX_FIELD_CHARS} characters"))
            continue
        pd_code = values["polling_district"].upper()
        if not pd_code:
            errors.append(RowError(line, "missing polling district"))
            continue
        eno_text = values["elector_number"]
        if not re.fullmatch(r"\d+", eno_text):
            errors.append(RowError(line, f"elector number {eno_text!r} is not a whole number"))
            continue
        if not values["surname"]:
            errors.append(RowError(line, "missing surname"))
            continue
        if any(_UNSAFE_TEXT.search(v) for v in (*values.values(), *lines)):
            errors.append(RowError(line, "a control or bidi-override character in the row"))
            continue
        if not lines:
            errors.append(RowError(line, "no address lines"))
            continue
        suffix = values.get("suffix", "")
        suffix = "" if suffix in ("", "0") else suffix
        eno = int(eno_text)
        elector_id = f"{pd_code}-{eno}" + (f"/{suffix}" if suffix else "")
        if elector_id in seen:
            errors.append(
                RowError(line, f"duplicate elector {elector_id} (first on line {seen[elector_id]})")
            )
            continue
        seen[elector_id] = line
        rows["polling_district"].append(pd_code)
        rows["elector_number"].append(eno)
        rows["suffix"].append(suffix)
        rows["elector_id"].append(elector_id)
        rows["franchise"].append(values.get("franchise", ""))
        rows["attainment_date"].append(values.get("attainment_date", "") or None)
        rows["surname"].append(values["surname"])
        rows["forenames"].append(values["forenames"])
        rows["address_lines"].append(lines)
        rows["postcode"].append(normalise_postcode(values.get("postcode", "")))
        rows["uprn"].append(values.get("uprn", "") or None)
        rows["line"].append(line)
    frame = pd.DataFrame(rows)
    frame["elector_number"] = frame["elector_number"].astype(np.int64)
    return frame, errors


def _tokens(text: str) -> list[str]:
    """Upper-case words of an address line, punctuation removed, abbreviations canonical."""
    text = text.upper().replace("&", " AND ").replace("'", "").replace("\u2019", "")
    text = re.sub(r"[^A-Z0-9 ]+", " ", text)
    # "12 A" -> "12A" (a house number with a letter suffix).
    text = re.sub(r"\b(\d+) ([A-Z])\b(?= |$)", r"\1\2", text)
    out = []
    for word in text.split():
        if word in _FLAT_WORDS:
            continue
        out.append(_ABBREVIATIONS.get(word, word))
    return out


def normalise_address(lines: Iterable[str], postcode: str | None = None) -> str:
    """Canonical matching key for an address: upper case, no punctuation, "FLAT 3" == "3", ST/RD/AVE.

    The postcode (if any) is appended without its space, after a "|" separator.
    """
    words: list[str] = []
    for line in lines:
        if line is None:
            continue
        words.extend(_tokens(str(line)))
    key = " ".join(words)
    pc = normalise_postcode(postcode).replace(" ", "") if postcode else ""
    return f"{key}|{pc}" if pc else key


SAME_PLACE_METRES = 150.0


def _address_keys(addresses: pd.DataFrame) -> tuple[dict[str, int], dict[str, int | None]]:
    """Lookup tables from address keys (with and without postcode) to row positions.

    Without a postcode a key is kept only if all addresses sharing it lie within
    SAME_PLACE_METRES of each other (duplicate mappings of one door); otherwise it is ambiguous.
    """
    with_pc: dict[str, int] = {}
    without_pc_all: dict[str, list[int]] = {}
    has_parts = all(c in addresses.columns for c in ("house_number", "street"))
    lines_col = addresses["lines"].to_numpy() if "lines" in addresses.columns else None
    postcodes = (
        addresses["postcode"].fillna("").to_numpy() if "postcode" in addresses.columns else None
    )
    flats = addresses["flat"].to_numpy() if "flat" in addresses.columns else None
    numbers = addresses["house_number"].to_numpy() if has_parts else None
    streets = addresses["street"].to_numpy() if has_parts else None
    for pos in range(len(addresses)):
        variants: list[Sequence[str]] = []
        if lines_col is not None:
            variants.append(tuple(lines_col[pos]))
        if (
            has_parts
            and numbers is not None
            and streets is not None
            and numbers[pos]
            and streets[pos]
        ):
            flat = flats[pos] if flats is not None else None
            parts = [str(flat)] if flat else []
            variants.append((*parts, f"{numbers[pos]} {streets[pos]}"))
        pc = postcodes[pos] if postcodes is not None else ""
        for lines in variants:
            bare = normalise_address(lines)
            if pc:
                with_pc.setdefault(normalise_address(lines, pc), pos)
            hits = without_pc_all.setdefault(bare, [])
            if not hits or hits[-1] != pos:
                hits.append(pos)
    xy = _lonlat(addresses)
    without_pc: dict[str, int | None] = {}
    for bare, hits in without_pc_all.items():
        if len(hits) == 1 or (xy is not None and _all_close(xy, hits)):
            without_pc[bare] = hits[0]
        else:
            without_pc[bare] = None  # ambiguous without a postcode
    return with_pc, without_pc


def _lonlat(addresses: pd.DataFrame) -> np.ndarray | None:
    """Point coordinates as an (n, 2) lon/lat array, if the frame has a WGS84 point geometry."""
    geometry = getattr(addresses, "geometry", None)
    if geometry is None or getattr(addresses, "crs", None) is None:
        return None
    if addresses.crs.to_epsg() != 4326:
        geometry = geometry.to_crs(4326)
    return np.column_stack([geometry.x.to_numpy(), geometry.y.to_numpy()])


def _all_close(xy: np.ndarray, positions: list[int]) -> bool:
    """Whether the given points all lie within SAME_PLACE_METRES of the first one."""
    pts = xy[positions]
    dlat = (pts[:, 1] - pts[0, 1]) * 111_320.0
    dlon = (pts[:, 0] - pts[0, 0]) * 111_320.0 * np.cos(np.radians(pts[0, 1]))
    return bool(np.all(np.hypot(dlat, dlon) <= SAME_PLACE_METRES))


def match_register(register_df: pd.DataFrame, addresses_gdf: pd.DataFrame) -> pd.DataFrame:
    """Attach each register entry to an address: by UPRN, else normalised address, else postcode.

    Adds `address_index` (the address frame's index label, or None) and `match` in
    {"uprn", "address", "postcode", "unmatched"}. A "postcode" match points at the first address
    in that postcode (good enough to place the elector on a map; flagged for review).
    Leading/trailing register lines (e.g. town) that the address lacks are tolerated.
    """
    index_labels = addresses_gdf.index.to_numpy()
    uprn_pos: dict[str, int] = {}
    if "uprn" in addresses_gdf.columns:
        for pos, u in enumerate(addresses_gdf["uprn"].to_numpy()):
            if isinstance(u, str) and u:
                uprn_pos.setdefault(str(u), pos)
    with_pc, without_pc = _address_keys(addresses_gdf)
    postcode_pos: dict[str, int] = {}
    if "postcode" in addresses_gdf.columns:
        for pos, pc in enumerate(addresses_gdf["postcode"].fillna("").to_numpy()):
            if pc:
                postcode_pos.setdefault(normalise_postcode(pc), pos)
    result_index: list[Any] = []
    result_match: list[str] = []
    reg_uprn = (
        register_df["uprn"].to_numpy()
        if "uprn" in register_df.columns
        else [None] * len(register_df)
    )
    for uprn, lines, pc in zip(
        reg_uprn, register_df["address_lines"], register_df["postcode"], strict=True
    ):
        pos: int | None = None
        how = "unmatched"
        if uprn and str(uprn) in uprn_pos:
            pos, how = uprn_pos[str(uprn)], "uprn"
        else:
            lines = tuple(lines)
            # Try the full lines, then drop trailing lines (town, county), then leading ones.
            candidates = [lines[:k] for k in range(len(lines), 0, -1)]
            candidates += [lines[k:] for k in range(1, len(lines))]
            for cand in candidates:
                if pc:
                    hit = with_pc.get(normalise_address(cand, pc))
                    if hit is not None:
                        pos, how = hit, "address"
                        break
                hit = without_pc.get(normalise_address(cand))
                if hit is not None:
                    pos, how = hit, "address"
                    break
            if pos is None and pc and normalise_postcode(pc) in postcode_pos:
                pos, how = postcode_pos[normalise_postcode(pc)], "postcode"
        result_index.append(index_labels[pos] if pos is not None else None)
        result_match.append(how)
    out = register_df.copy()
    out["address_index"] = pd.Series(result_index, index=out.index, dtype=object)
    out["match"] = result_match
    return out
