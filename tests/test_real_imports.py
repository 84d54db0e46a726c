"""Real public data through the real import services, on SQLite and PostgreSQL, with identical results.

One scenario per backend (module-scoped, so the big files are imported once per backend):
Camden 2011 OAs (BNG shapefile) + KS201EW, a ranking by bame_share, Code-Point Open postcodes,
OSM addresses and a synthetic register for them; Newham OAs + the MLID table; and a census file
with one bad row that must leave the database untouched. Each backend's results are reduced
to digests and compared between backends.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fixtures.register import make_register_for_addresses
from server.campaigns.schemas import CampaignCreate
from server.campaigns.services import create_campaign
from server.db.models import Address, CampaignArea, CensusArea, Person
from server.db.session import create_engine_for, create_sessionmaker, session_scope
from server.errors import InvalidInput
from server.geography.services import (
    campaign_addresses_frame,
    import_addresses,
    import_boundaries,
    import_census_table,
    import_register,
)
from server.targeting.services import rank_campaign_areas
from tests.conftest import BACKENDS, PG_HOST, PG_PORT, truncate_all
from tests.realdata import real_data_path

T = TypeVar("T")

CAMDEN_OA_SHP = "camden/boundaries_2011/cdrc_bng/Camden_oa11.shp"
CAMDEN_KS201 = "camden/census_2011/cdrc_KS201EW_oa11.csv"
CAMDEN_CODEPOINT = "camden/postcodes/codepoint_open_2014-08_E09000007.csv"
CAMDEN_PBF = "camden/osm/camden.osm.pbf"
NEWHAM_OA = "newham/boundaries_2011/oa_by_lad_E09000025.geojson"
NEWHAM_MLID = "newham/census_2011/ethnicity_2011_oa11_E09000025_from_MLID.csv"


def _digest(items: Any) -> str:
    """A stable hash of JSON-able data."""
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()


async def _unit(maker: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one unit of work (commit on success, roll back on error), like the CLI."""
    async with session_scope(maker) as session:
        return await work(session)


async def _new_campaign(maker: async_sessionmaker[AsyncSession], slug: str) -> int:
    async def work(session: AsyncSession) -> int:
        return (await create_campaign(session, CampaignCreate(name=slug.title(), slug=slug), None)).id

    return await _unit(maker, work)


async def _areas_digest(session: AsyncSession) -> tuple[int, str]:
    """Every census area (code, vintage, kind, counts, population, table, geometry hash), sorted."""
    rows = (
        await session.execute(
            select(CensusArea.code, CensusArea.vintage, CensusArea.kind, CensusArea.counts, CensusArea.population,
                   CensusArea.census_table, CensusArea.geometry)
        )
    ).all()
    items = sorted(
        (r.code, r.vintage, r.kind, json.dumps(r.counts, sort_keys=True), r.population, r.census_table,
         hashlib.sha256(r.geometry).hexdigest() if r.geometry else None)
        for r in rows
    )
    return len(items), _digest(items)


async def _addresses_digest(session: AsyncSession, campaign_id: int) -> tuple[int, str]:
    """(count, hash of sorted house number, street, postcode, area, rounded position) of a campaign's addresses."""
    rows = (
        await session.execute(
            select(Address.house_number, Address.street, Address.postcode, Address.area_code, Address.lon, Address.lat)
            .where(Address.campaign_id == campaign_id)
        )
    ).all()
    items = sorted((r.house_number, r.street, r.postcode, r.area_code or "", round(r.lon, 7), round(r.lat, 7)) for r in rows)
    return len(items), _digest(items)


async def _whole_db_digest(session: AsyncSession) -> str:
    """Areas, campaign links, addresses and people: enough to see any change an import could make."""
    _, areas = await _areas_digest(session)
    links = sorted(tuple(r) for r in (await session.execute(select(CampaignArea.campaign_id, CampaignArea.area_id))).all())
    addresses = (await session.scalar(select(func.count()).select_from(Address))) or 0
    people = (await session.scalar(select(func.count()).select_from(Person))) or 0
    return _digest([areas, links, addresses, people])


async def _run_backend(url: str, tmp: Path) -> dict[str, Any]:
    """The whole real-data scenario on one (emptied) database; returns comparable results."""
    await truncate_all(url)
    engine = create_engine_for(url)
    maker = create_sessionmaker(engine)
    out: dict[str, Any] = {}
    try:
        # --- Camden: OAs (BNG shapefile) + KS201EW, ranking ---
        camden = await _new_campaign(maker, "camden")
        out["camden_boundaries"] = await _unit(maker, lambda s: import_boundaries(s, camden, real_data_path(CAMDEN_OA_SHP)))
        out["camden_census"] = await _unit(maker, lambda s: import_census_table(s, camden, real_data_path(CAMDEN_KS201)))
        ranking = await _unit(maker, lambda s: rank_campaign_areas(s, camden, measure="bame_share"))
        out["camden_ranking"] = [(f["properties"]["code"], f["properties"]["rank"], f["properties"]["value"]) for f in ranking.features]
        at_half = await _unit(maker, lambda s: rank_campaign_areas(s, camden, measure="bame_share", threshold=0.5))
        out["camden_at_half"] = [f["properties"]["code"] for f in at_half.features]
        out["camden_top"] = dict(ranking.features[0]["properties"])

        # --- Camden: OSM addresses, then a synthetic register for them ---
        out["osm"] = await _unit(maker, lambda s: import_addresses(s, camden, real_data_path(CAMDEN_PBF), fmt="osm"))
        out["osm_digest"] = await _unit(maker, lambda s: _addresses_digest(s, camden))
        out["osm_with_number_and_street"] = await _unit(
            maker,
            lambda s: s.scalar(
                select(func.count()).select_from(Address)
                .where(Address.campaign_id == camden, Address.house_number != "", Address.street != "")
            ),
        )
        addresses = await _unit(maker, lambda s: campaign_addresses_frame(s, camden))
        register_csv = tmp / "camden_register.csv"
        make_register_for_addresses(addresses).to_csv(register_csv, index=False)
        out["register"] = await _unit(maker, lambda s: import_register(s, camden, register_csv))
        people = await _unit(
            maker,
            lambda s: s.execute(
                select(Person.polling_district, Person.elector_number, Person.surname, Person.match, Address.street, Address.house_number)
                .outerjoin(Address, Address.id == Person.address_id)
                .where(Person.campaign_id == camden)
            ),
        )
        people_rows = sorted(tuple("" if v is None else v for v in r) for r in people.all())
        out["register_people"] = (len(people_rows), _digest(people_rows))

        # --- Camden: Code-Point Open postcodes (own campaign, same OAs) ---
        postcodes = await _new_campaign(maker, "camden-postcodes")
        await _unit(maker, lambda s: import_boundaries(s, postcodes, real_data_path(CAMDEN_OA_SHP)))
        out["codepoint"] = await _unit(maker, lambda s: import_addresses(s, postcodes, real_data_path(CAMDEN_CODEPOINT), fmt="codepoint"))
        out["codepoint_digest"] = await _unit(maker, lambda s: _addresses_digest(s, postcodes))
        out["codepoint_without_area"] = await _unit(
            maker,
            lambda s: s.scalar(select(func.count()).select_from(Address).where(Address.campaign_id == postcodes, Address.area_code.is_(None))),
        )

        # --- Newham: OAs (GeoJSON) + the per-OA MLID table ---
        newham = await _new_campaign(maker, "newham")
        out["newham_boundaries"] = await _unit(maker, lambda s: import_boundaries(s, newham, real_data_path(NEWHAM_OA)))
        out["newham_census"] = await _unit(maker, lambda s: import_census_table(s, newham, real_data_path(NEWHAM_MLID)))
        newham_ranking = await _unit(maker, lambda s: rank_campaign_areas(s, newham, measure="bame_share"))
        out["newham_ranked"] = newham_ranking.count

        # --- A census file with one bad row (and changed counts elsewhere) changes nothing ---
        with real_data_path(CAMDEN_KS201).open(newline="") as handle:
            rows = list(csv.reader(handle))
        total_col = rows[0].index("KS201EW0001")
        rows[1][total_col] = str(int(rows[1][total_col]) + 1000)
        rows[5][total_col] = "lots"
        bad_csv = tmp / "bad_ks201.csv"
        with bad_csv.open("w", newline="") as handle:
            csv.writer(handle).writerows(rows)
        before = await _unit(maker, _whole_db_digest)
        try:
            await _unit(maker, lambda s: import_census_table(s, camden, bad_csv))
            out["bad_import_error"] = None
        except InvalidInput as exc:
            out["bad_import_error"] = exc.detail
        out["bad_import_unchanged"] = before == await _unit(maker, _whole_db_digest)

        out["areas_digest"] = await _unit(maker, _areas_digest)
    finally:
        await engine.dispose()
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def runs(database_urls: dict[str, str | None], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any] | None]:
    """The scenario's results per backend (None where PostgreSQL is unreachable)."""
    for rel in (CAMDEN_OA_SHP, CAMDEN_KS201, CAMDEN_CODEPOINT, CAMDEN_PBF, NEWHAM_OA, NEWHAM_MLID):
        real_data_path(rel)
    results: dict[str, dict[str, Any] | None] = {}
    for backend in BACKENDS:
        url = database_urls[backend]
        results[backend] = await _run_backend(url, tmp_path_factory.mktemp(backend)) if url else None
        if url:
            await truncate_all(url)
    return results


def _result(runs: dict[str, dict[str, Any] | None], backend: str, database_urls: dict[str, str | None]) -> dict[str, Any]:
    result = runs[backend]
    if result is None:
        reason = f"PostgreSQL not reachable on {PG_HOST}:{PG_PORT}: {database_urls.get('pg_error')}"
        if os.environ.get("CANVASS_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (CANVASS_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    return result


@pytest.fixture(params=BACKENDS)
def run(request: pytest.FixtureRequest, runs: dict[str, dict[str, Any] | None], database_urls: dict[str, str | None]) -> dict[str, Any]:
    """One backend's results."""
    return _result(runs, request.param, database_urls)


def test_camden_oas_and_ks201_import(run: dict[str, Any]) -> None:
    """All 749 Camden OAs from the BNG shapefile, each with its KS201EW counts."""
    boundaries, census = run["camden_boundaries"], run["camden_census"]
    assert boundaries.rows_written == 749 and boundaries.details["kind_OA"] == 749
    assert census.rows_written == 749 and census.unmatched == 0 and census.details["matched_boundaries"] == 749
    assert len(run["camden_ranking"]) == 749


def test_camden_ranking_matches_pandas(run: dict[str, Any]) -> None:
    """Top OA by bame_share and the 108 OAs at >= 50% equal a direct computation from the CSV."""
    raw = pd.read_csv(real_data_path(CAMDEN_KS201))
    white = raw[["KS201EW0002", "KS201EW0003", "KS201EW0004", "KS201EW0005"]].sum(axis=1)
    share = (raw["KS201EW0001"] - white) / raw["KS201EW0001"]
    expected = raw.assign(share=share).sort_values(["share", "GeographyCode"], ascending=[False, True])
    top = expected.iloc[0]
    assert run["camden_top"]["code"] == top["GeographyCode"]
    assert run["camden_top"]["value"] == pytest.approx(top["share"], abs=1e-6)
    assert run["camden_top"]["population"] == top["KS201EW0001"]
    assert len(run["camden_at_half"]) == int((share >= 0.5).sum()) == 108
    assert set(run["camden_at_half"]) == set(expected.loc[expected["share"] >= 0.5, "GeographyCode"])
    assert [c for c, _, _ in run["camden_ranking"][:108]] == run["camden_at_half"]


def test_camden_codepoint_postcodes_fall_in_oas(run: dict[str, Any]) -> None:
    """All 8,354 Code-Point postcodes import and each lies inside an imported OA."""
    report = run["codepoint"]
    assert report.rows_written == 8354 and report.unmatched == 0
    assert run["codepoint_digest"][0] == 8354
    assert run["codepoint_without_area"] == 0


def test_camden_osm_addresses(run: dict[str, Any]) -> None:
    """At least 12,000 OSM addresses with house numbers and streets."""
    report = run["osm"]
    assert report.rows_written >= 12_000
    assert run["osm_digest"][0] == report.rows_written
    assert run["osm_with_number_and_street"] >= 12_000


def test_register_for_camden_matches(run: dict[str, Any]) -> None:
    """A register generated for Camden's OSM addresses imports with >= 99% of rows matched."""
    report = run["register"]
    assert report.rows_written > 12_000 and report.rows_skipped == 0
    assert report.unmatched <= report.rows_written * 0.01, report.details
    by_address = report.details.get("matched_by_uprn", 0) + report.details.get("matched_by_address", 0)
    assert by_address >= report.rows_written * 0.99, report.details
    assert run["register_people"][0] == report.rows_written


def test_newham_oas_and_mlid_join(run: dict[str, Any]) -> None:
    """Newham's 810 OAs and the MLID per-OA table join fully."""
    assert run["newham_boundaries"].rows_written == 810
    census = run["newham_census"]
    assert census.rows_written == 810 and census.unmatched == 0 and census.details["matched_boundaries"] == 810
    assert run["newham_ranked"] == 810


def test_failed_import_changes_nothing(run: dict[str, Any]) -> None:
    """A census CSV with one bad row is refused by line and leaves the database as it was."""
    assert run["bad_import_error"] is not None and "line 6" in run["bad_import_error"]
    assert run["bad_import_unchanged"] is True


def test_backends_give_identical_results(runs: dict[str, dict[str, Any] | None], database_urls: dict[str, str | None]) -> None:
    """SQLite and PostgreSQL hold the same areas, counts, ranking, addresses and electors."""
    sqlite, postgresql = (_result(runs, b, database_urls) for b in BACKENDS)
    for key in ("areas_digest", "camden_ranking", "camden_at_half", "osm_digest", "codepoint_digest", "register_people", "newham_ranked"):
        assert sqlite[key] == postgresql[key], key
    for key in ("camden_boundaries", "camden_census", "osm", "codepoint", "register", "newham_boundaries", "newham_census"):
        assert sqlite[key] == postgresql[key], key
