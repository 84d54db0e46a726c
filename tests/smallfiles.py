"""Small import files made inside tests (never copies of real data): Code-Point rows, boundaries, TS021 tables."""

from __future__ import annotations

import csv
import json
from pathlib import Path

# Two squares in Camden (lon/lat), each about 700 m wide.
SQUARES = [(-0.150, 51.540, -0.140, 51.546), (-0.140, 51.540, -0.130, 51.546)]
# BNG points inside the first square (about -0.145, 51.543).
GOOD_EN = ((528500, 184300), (528520, 184310))


def codepoint_file(path: Path, *, header: bool = False) -> Path:
    """A Code-Point Open CSV: a good row, a row with eastings/northings 0, a non-numeric easting, a good row."""
    rows = []
    if header:
        rows.append("Postcode,Positional_quality_indicator,Eastings,Northings,Country_code,NHS_regional_HA_code,NHS_HA_code,"
                    "Admin_county_code,Admin_district_code,Admin_ward_code")
    rows += [
        f'"NW1 1AA",10,{GOOD_EN[0][0]},{GOOD_EN[0][1]},"E92000001","E19000003","E18000007","","E09000007","E05000128"',
        '"NW1 1AB",90,0,0,"E92000001","","","","E09000007","E05000128"',
        '"NW1 1AD",10,5285OO,184300,"E92000001","E19000003","E18000007","","E09000007","E05000128"',
        f'"NW1 1AE",10,{GOOD_EN[1][0]},{GOOD_EN[1][1]},"E92000001","E19000003","E18000007","","E09000007","E05000128"',
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def boundary_file(path: Path, code_field: str, codes: tuple[str, str]) -> Path:
    """A GeoJSON of two square areas with the given ONS code field (OA11CD, LSOA21CD, ...)."""
    features = []
    for code, (x0, y0, x1, y1) in zip(codes, SQUARES, strict=True):
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        features.append({"type": "Feature", "properties": {code_field: code, code_field[:-2] + "NM": f"Area {code}"},
                         "geometry": {"type": "Polygon", "coordinates": [ring]}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def ts021_file(path: Path, code_field: str, codes: tuple[str, ...]) -> Path:
    """A 2021 TS021 broad ethnic-group table for the given codes."""
    header = [code_field, "Total: All usual residents", "Asian, Asian British or Asian Welsh",
              "Black, Black British, Black Welsh, Caribbean or African", "Mixed or Multiple ethnic groups", "White", "Other ethnic group"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([code, 1000, 300, 200, 50, 400, 50] for code in codes)
    return path
