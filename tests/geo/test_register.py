"""Register import, address normalisation and matching (incl. Camden's OSM addresses)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from fixtures.register import make_register_for_addresses
from geo.register import match_register, normalise_address, read_register_csv


def test_read_register_with_alternative_headers(tmp_path: Path) -> None:
    path = tmp_path / "reg.csv"
    path.write_text(
        "Polling District,Elector Number,Elector Number Suffix,Franchise Flag,Date of Attainment,"
        "Surname,Forenames,Address Line 1,Address Line 2,Postcode,Property UPRN\n"
        "AB1,1,0,,,Smith,Ada,Flat 1,12 High Street,nw1 2ab,100\n"
        "AB1,1,1,G,,Khan,Omar,Flat 1,12 High Street,NW1 2AB,\n"
        ",2,0,,,Jones,Tom,14 High Street,,NW1 2AB,\n"
        "AB1,two,0,,,Jones,Tom,14 High Street,,NW1 2AB,\n"
        "\n"
        "AB1,3,0,,,,Tom,14 High Street,,NW1 2AB,\n"
        "AB1,1,0,,,Smith,Ada,Flat 1,12 High Street,NW1 2AB,\n"
        "AB1,4,,,2026-05-01,Lee,Mei,16 High Street,,NW1 2AB,\n"
    )
    df, errors = read_register_csv(path)
    assert list(df["elector_id"]) == ["AB1-1", "AB1-1/1", "AB1-4"]
    assert df.iloc[0]["address_lines"] == ("Flat 1", "12 High Street")
    assert df.iloc[0]["postcode"] == "NW1 2AB" and df.iloc[0]["uprn"] == "100"
    assert df.iloc[1]["franchise"] == "G" and df.iloc[2]["attainment_date"] == "2026-05-01"
    assert [e.line for e in errors] == [4, 5, 7, 8]
    assert "polling district" in errors[0].reason
    assert "'two' is not a whole number" in errors[1].reason
    assert "surname" in errors[2].reason
    assert "duplicate elector AB1-1 (first on line 2)" in errors[3].reason
    assert not any("ethn" in c for c in df.columns)


def test_register_missing_columns_is_clear(tmp_path: Path) -> None:
    path = tmp_path / "reg.csv"
    path.write_text("Name,Address\nAda,1 High St\n")
    with pytest.raises(ValueError, match="missing required columns"):
        read_register_csv(path)


def test_normalise_address_variants() -> None:
    key = normalise_address(["Flat 3", "12 High Street"], "nw1 2ab")
    assert key == normalise_address(["FLAT 3, 12 HIGH ST."], "NW12AB")
    assert key == normalise_address(["3", "12 High St"], "NW1 2AB")
    assert normalise_address(["12a Acacia Avenue"]) == normalise_address(["12 A ACACIA AVE"])
    assert normalise_address(["1 St. Mary's Road"]) == normalise_address(["1 Saint Marys Rd"])
    assert normalise_address(["12 High Street"]) != normalise_address(["14 High Street"])


def _addresses() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "uprn": ["100", "101", "102", None],
            "lines": [
                ("Flat 1", "12 High Street"),
                ("Flat 2", "12 High Street"),
                ("14 High Street",),
                ("1 Mill Lane",),
            ],
            "postcode": ["NW1 2AB", "NW1 2AB", "NW1 2AB", "NW1 9ZZ"],
            "street": ["High Street", "High Street", "High Street", "Mill Lane"],
            "house_number": ["12", "12", "14", "1"],
            "flat": ["Flat 1", "Flat 2", None, None],
        },
        geometry=gpd.points_from_xy([-0.1, -0.1, -0.1001, -0.12], [51.5, 51.5, 51.5, 51.51]),
        crs=4326,
        index=[10, 11, 12, 13],
    )


def test_match_register_strategies() -> None:
    register = pd.DataFrame(
        {
            "uprn": ["101", None, None, None, None],
            "address_lines": [
                ("whatever",),
                ("FLAT 1, 12 HIGH ST", "LONDON"),
                ("1 Mill Ln",),
                ("99 High Street",),
                ("1 Nowhere Road",),
            ],
            "postcode": ["NW1 2AB", "NW1 2AB", "", "NW1 2AB", "ZZ1 1ZZ"],
        }
    )
    matched = match_register(register, _addresses())
    assert list(matched["match"]) == ["uprn", "address", "address", "postcode", "unmatched"]
    assert list(matched["address_index"]) == [11, 10, 13, 10, None]


def test_camden_register_matches_osm_addresses(camden_osm_addresses, tmp_path: Path) -> None:
    register = make_register_for_addresses(camden_osm_addresses, seed=11)
    path = tmp_path / "camden_register.csv"
    register.to_csv(path, index=False)
    entries, errors = read_register_csv(path)
    assert errors == [] and len(entries) == len(register)
    matched = match_register(entries, camden_osm_addresses)
    share = (matched["match"] != "unmatched").mean()
    assert share >= 0.99, matched["match"].value_counts()
    assert (matched["match"] == "address").mean() > 0.6  # most rows matched without a UPRN
    # Matched rows point at an address with the same house number.
    ok = matched[matched["match"] == "address"].head(500)
    numbers = camden_osm_addresses.loc[ok["address_index"].to_list(), "house_number"].str.upper()
    assert all(
        n in " ".join(lines).upper() for n, lines in zip(numbers, ok["address_lines"], strict=True)
    )
