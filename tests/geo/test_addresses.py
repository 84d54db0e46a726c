"""Address readers: Camden's OSM extract, Code-Point Open, generic CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo.addresses import (
    ADDRESS_COLUMNS,
    expand_flats,
    normalise_postcode,
    read_address_csv,
    read_codepoint,
    read_osm_addresses,
)
from tests.geo.conftest import CAMDEN_CODEPOINT, CAMDEN_CODEPOINT_HEADERS
from tests.realdata import real_data_path


def test_camden_osm_addresses(camden_osm_addresses) -> None:
    gdf = camden_osm_addresses
    assert list(gdf.columns) == [*ADDRESS_COLUMNS, "geometry"]
    assert gdf.crs.to_epsg() == 4326
    with_number_and_street = gdf[(gdf["house_number"] != "") & (gdf["street"] != "")]
    assert len(with_number_and_street) >= 12_000
    assert gdf["uprn"].is_unique
    assert gdf["uprn"].str.match(r"^osm:[nw]\d+(/.+)?$").all()
    minx, miny, maxx, maxy = gdf.total_bounds
    assert -0.27 < minx < maxx < -0.04 and 51.47 < miny < maxy < 51.61
    # Flats: several doors share one building key.
    shared = gdf.groupby("building_key").size()
    assert (shared > 1).sum() > 100
    assert gdf["flat"].dropna().str.match(r"^(Flat|Apartment|Unit)").mean() > 0.9
    assert all(isinstance(lines, tuple) and lines for lines in gdf["lines"].head(100))


def test_osm_reader_is_fast_and_reports_progress(camden_osm_read) -> None:
    assert camden_osm_read.seconds < 30
    calls = camden_osm_read.progress_calls
    assert calls and calls[-1][0] == calls[-1][1]
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_osm_flats_and_buildings(tmp_path: Path) -> None:
    """addr:flats expands to one door per flat; address nodes inside one building share its key."""
    path = tmp_path / "tiny.osm"
    nodes = [(1, -0.1, 51.5), (2, -0.0999, 51.5), (3, -0.0999, 51.5001), (4, -0.1, 51.5001)]
    xml = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    xml += [f'<node id="{i}" version="1" lat="{lat}" lon="{lon}"/>' for i, lon, lat in nodes]
    for i, (lon, number) in enumerate([(-0.09995, "7"), (-0.09993, "9")], start=10):
        xml.append(
            f'<node id="{i}" version="1" lat="51.50005" lon="{lon}">'
            f'<tag k="addr:housenumber" v="{number}"/><tag k="addr:street" v="Mill Lane"/></node>'
        )
    xml.append(
        '<way id="100" version="1">'
        + "".join(f'<nd ref="{n}"/>' for n in (1, 2, 3, 4, 1))
        + '<tag k="building" v="yes"/><tag k="addr:postcode" v="nw12ab"/></way>'
    )
    xml.append(
        '<node id="20" version="1" lat="51.51" lon="-0.11"><tag k="addr:housenumber" v="1"/>'
        '<tag k="addr:street" v="High Street"/><tag k="addr:flats" v="1-3"/></node>'
    )
    xml.append(
        '<node id="21" version="1" lat="51.52" lon="-0.12"><tag k="addr:housenumber" v="5"/></node>'
    )
    xml.append("</osm>")
    path.write_text("\n".join(xml))
    gdf = read_osm_addresses(path)
    by_uprn = gdf.set_index("uprn")
    assert set(by_uprn.loc[["osm:n10", "osm:n11"], "building_key"]) == {"osm:w100"}
    assert set(by_uprn.loc[["osm:n10", "osm:n11"], "postcode"]) == {
        "NW1 2AB"
    }  # inherited from building
    flats = gdf[gdf["uprn"].str.startswith("osm:n20/")]
    assert list(flats["flat"]) == ["Flat 1", "Flat 2", "Flat 3"]
    assert set(flats["building_key"]) == {"osm:n20"}
    assert flats.iloc[0]["lines"] == ("Flat 1", "1 High Street")
    assert "osm:n21" not in set(gdf["uprn"])  # no street: not a usable address


def test_codepoint() -> None:
    gdf = read_codepoint(real_data_path(CAMDEN_CODEPOINT), real_data_path(CAMDEN_CODEPOINT_HEADERS))
    assert len(gdf) == 8354 and gdf.crs.to_epsg() == 4326
    assert gdf.iloc[0]["postcode"] == "EC1M 3HA"
    assert set(gdf["district_code"]) == {"E09000007"}
    assert gdf["ward_code"].nunique() == 18
    assert gdf.geometry.notna().all()
    # EC1M 3HA is at BNG 531511,181768 -> about (-0.106, 51.520).
    assert gdf.geometry.iloc[0].x == pytest.approx(-0.1059, abs=1e-3)
    assert gdf.geometry.iloc[0].y == pytest.approx(51.5195, abs=1e-3)
    without_headers = read_codepoint(real_data_path(CAMDEN_CODEPOINT))
    assert list(without_headers["postcode"]) == list(gdf["postcode"])


def test_address_csv_reports_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "uprn,address_line_1,address_line_2,postcode,lon,lat\n"
        "1,Flat 1,12 High Street,nw1 2ab,-0.1,51.5\n"
        "2,,,NW1 2AB,-0.1,51.5\n"
        "3,14 High Street,,NW1 2AB,west,51.5\n"
        "\n"
        "4,16 High Street,,NW1 2AB,-200,51.5\n"
        "5,18 High Street,,NW1 2AB,-0.1,51.5\n"
    )
    gdf, errors = read_address_csv(path)
    assert list(gdf["uprn"]) == ["1", "5"]
    assert gdf.iloc[0]["lines"] == ("Flat 1", "12 High Street")
    assert gdf.iloc[0]["postcode"] == "NW1 2AB"
    assert [(e.line, e.reason.split()[0]) for e in errors] == [
        (3, "no"),
        (4, "coordinates"),
        (6, "lon/lat"),
    ]


def test_address_csv_coordinate_variants(tmp_path: Path) -> None:
    bng = tmp_path / "bng.csv"
    bng.write_text('lines,postcode,easting,northing\n"1 High St|London",EC1M 3HA,531511,181768\n')
    gdf, errors = read_address_csv(bng)
    assert errors == [] and gdf.iloc[0]["lines"] == ("1 High St", "London")
    assert gdf.geometry.iloc[0].x == pytest.approx(-0.1059, abs=1e-3)
    xy = tmp_path / "xy.csv"
    xy.write_text("lines,postcode,x,y\n1 High St,EC1M 3HA,531511,181768\n")
    with pytest.raises(ValueError, match="crs"):
        read_address_csv(xy)
    gdf_xy, _ = read_address_csv(xy, crs="EPSG:27700")
    assert gdf_xy.geometry.iloc[0].equals_exact(gdf.geometry.iloc[0], 1e-9)


def test_small_helpers() -> None:
    assert normalise_postcode(" nw12ab ") == "NW1 2AB"
    assert normalise_postcode("EC1M3HA") == "EC1M 3HA"
    assert expand_flats("1-3;5") == ["1", "2", "3", "5"]
    assert expand_flats("A-C") == ["A", "B", "C"]
    assert len(expand_flats("1-100000")) == 1  # absurd range kept as one label, not exploded
