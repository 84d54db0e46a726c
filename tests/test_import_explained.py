"""Imports that explain themselves: bad coordinates by line, format hints, boundary vintages, census that matches nothing.

Each test makes its small bad file itself, and runs through HTTP and the real CLI on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Address, CensusArea
from tests.clirun import one_line_error, run_cli
from tests.conftest import World
from tests.smallfiles import boundary_file, codepoint_file, ts021_file


async def upload(client: AsyncTestClient[Litestar], world: World, kind: str, path: Path, **params: object):  # type: ignore[no-untyped-def]
    """POST a file to an import endpoint as the organiser."""
    return await client.post(
        f"/api/campaigns/{world.campaign_a}/imports/{kind}", files={"data": (path.name, path.read_bytes())},
        params={k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}, headers=world.auth("organiser"),
    )


async def count_addresses(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Address)) or 0)


async def test_codepoint_zero_and_unreadable_coordinates_over_http(
    client: AsyncTestClient[Litestar], world: World, tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Zero eastings/northings and a non-numeric easting are a 422 naming lines 2 and 3 (never a 409); skip_bad_rows imports the rest."""
    path = codepoint_file(tmp_path / "nw1.csv")
    refused = await upload(client, world, "addresses", path, format="codepoint")
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert [e["field"] for e in body["errors"]] == ["line 2", "line 3"], body
    assert "line 2" in body["detail"]
    assert await count_addresses(sessionmaker) == 0
    accepted = await upload(client, world, "addresses", path, format="codepoint", skip_bad_rows=True)
    assert accepted.status_code == 201, accepted.text
    report = accepted.json()
    assert report["rows_written"] == 2 and report["rows_skipped"] == 2
    assert [e["line"] for e in report["errors"]] == [2, 3]
    assert "0" in report["errors"][0]["reason"] and "5285OO" in report["errors"][1]["reason"]
    assert await count_addresses(sessionmaker) == 2


async def test_codepoint_with_a_header_line_over_http(client: AsyncTestClient[Litestar], world: World, tmp_path: Path) -> None:
    """A header line is read as column names (and said so), not taken for a postcode with no coordinates; bad lines keep their numbers."""
    path = codepoint_file(tmp_path / "nw1-header.csv", header=True)
    accepted = await upload(client, world, "addresses", path, format="codepoint", skip_bad_rows=True)
    assert accepted.status_code == 201, accepted.text
    report = accepted.json()
    assert report["rows_written"] == 2
    assert [e["line"] for e in report["errors"]] == [3, 4]
    assert report["details"]["header_line"] == 1


async def test_codepoint_through_the_cli_detects_its_format(
    world: World, tmp_path: Path, db_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Without --format a Code-Point file is recognised; bad rows give a one-line error naming the line, then --skip-bad-rows lists them."""
    path = codepoint_file(tmp_path / "nw1.csv")
    refused = await run_cli(db_url, "import", "addresses", str(path), "-c", "campaign-a")
    line = one_line_error(refused)
    assert "line 2" in line and "IntegrityError" not in line
    assert await count_addresses(sessionmaker) == 0
    accepted = await run_cli(db_url, "import", "addresses", str(path), "-c", "campaign-a", "--skip-bad-rows")
    assert accepted.code == 0, accepted.err
    assert "wrote 2, skipped 2" in accepted.out
    assert "line 2:" in accepted.err and "line 3:" in accepted.err
    assert "codepoint" in accepted.out  # says which format it read
    assert await count_addresses(sessionmaker) == 2


async def test_wrong_or_unknown_format_gives_a_hint(world: World, tmp_path: Path, db_url: str) -> None:
    """A CSV given as OSM names the right --format; a file of no known format says which formats exist."""
    path = codepoint_file(tmp_path / "nw1.csv")
    wrong = one_line_error(await run_cli(db_url, "import", "addresses", str(path), "-c", "campaign-a", "--format", "osm"))
    assert "--format codepoint" in wrong, wrong
    points = tmp_path / "points.csv"
    points.write_text("lines,postcode,lon,lat\n1 High St,NW1 1AA,-0.145,51.543\n")
    wrong_csv = one_line_error(await run_cli(db_url, "import", "addresses", str(points), "-c", "campaign-a", "--format", "codepoint"))
    assert "--format csv" in wrong_csv, wrong_csv
    junk = tmp_path / "notes.txt"
    junk.write_text("these are my canvassing notes\nnothing to see\n")
    unsure = one_line_error(await run_cli(db_url, "import", "addresses", str(junk), "-c", "campaign-a"))
    assert "--format" in unsure and "osm" in unsure and "codepoint" in unsure and "csv" in unsure, unsure


async def test_boundary_vintage_from_field_names(
    client: AsyncTestClient[Litestar], world: World, tmp_path: Path, db_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """LSOA21CD boundaries are stored as 2021 without --vintage; --vintage 2011 on them is refused naming the field (CLI and HTTP)."""
    path = boundary_file(tmp_path / "lsoa21.geojson", "LSOA21CD", ("E01000001", "E01000002"))
    contradicted = one_line_error(await run_cli(db_url, "import", "boundaries", str(path), "-c", "campaign-a", "--vintage", "2011"))
    assert "LSOA21CD" in contradicted and "2021" in contradicted, contradicted
    over_http = await upload(client, world, "boundaries", path, vintage=2011)
    assert over_http.status_code == 422 and "LSOA21CD" in over_http.json()["detail"]
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(CensusArea)) == 0
    imported = await run_cli(db_url, "import", "boundaries", str(path), "-c", "campaign-a")
    assert imported.code == 0, imported.err
    areas = (await client.get(f"/api/campaigns/{world.campaign_a}/areas", headers=world.auth("organiser"))).json()
    assert {(a["code"], a["vintage"], a["kind"]) for a in areas} == {("E01000001", 2021, "LSOA"), ("E01000002", 2021, "LSOA")}
    census = ts021_file(tmp_path / "ts021.csv", "LSOA21CD", ("E01000001", "E01000002"))
    matched = await run_cli(db_url, "import", "census", str(census), "-c", "campaign-a")
    assert matched.code == 0, matched.err
    assert "matched_boundaries: 2" in matched.out
    oa11 = boundary_file(tmp_path / "oa11.geojson", "OA11CD", ("E00000001", "E00000002"))
    over_http_2011 = await upload(client, world, "boundaries", oa11)
    assert over_http_2011.status_code == 201 and over_http_2011.json()["details"]["vintage"] == 2011


async def test_census_matching_no_area_fails(
    client: AsyncTestClient[Litestar], world: World, tmp_path: Path, db_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A 2021 table over 2011 boundaries matches no area: non-zero exit with a clear message, 422 over HTTP, nothing stored."""
    oa11 = boundary_file(tmp_path / "oa11.geojson", "OA11CD", ("E00000001", "E00000002"))
    assert (await upload(client, world, "boundaries", oa11)).status_code == 201
    census = ts021_file(tmp_path / "ts021.csv", "LSOA21CD", ("E01000001", "E01000002"))
    line = one_line_error(await run_cli(db_url, "import", "census", str(census), "-c", "campaign-a"))
    assert "matched no area" in line and "2021" in line, line
    over_http = await upload(client, world, "census", census)
    assert over_http.status_code == 422, over_http.text
    assert "matched no area" in over_http.json()["detail"]
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(CensusArea).where(CensusArea.vintage == 2021)) == 0
