"""Imports and targeting through the API on the synthetic town, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from litestar import Litestar
from litestar.testing import AsyncTestClient
from shapely.geometry import box, mapping
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fixtures.town import Town, generate_town, write_town_files
from server.db.models import Address, CensusArea, Person
from tests.conftest import World


@pytest.fixture(scope="module")
def town() -> Town:
    """The deterministic synthetic town."""
    return generate_town()


@pytest.fixture(scope="module")
def town_files(town: Town, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The town written in real file formats."""
    return write_town_files(town, tmp_path_factory.mktemp("town"))


async def upload(client: AsyncTestClient[Litestar], world: World, kind: str, path: Path, **params: object) -> object:
    """POST a file to an import endpoint as the organiser."""
    return await client.post(
        f"/api/campaigns/{world.campaign_a}/imports/{kind}",
        files={"data": (path.name, path.read_bytes())},
        params={k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()},
        headers=world.auth("organiser"),
    )


async def import_town(client: AsyncTestClient[Litestar], world: World, files: dict[str, Path]) -> dict[str, dict]:
    """Import the whole town through the API; returns each report."""
    reports = {}
    for kind, key, params in (
        ("boundaries", "areas", {}),
        ("census", "census", {}),
        ("addresses", "addresses", {"format": "csv"}),
        ("register", "register", {}),
    ):
        response = await upload(client, world, kind, files[key], **params)
        assert response.status_code == 201, response.text  # type: ignore[attr-defined]
        reports[kind] = response.json()  # type: ignore[attr-defined]
    return reports


async def test_import_town_through_api(
    client: AsyncTestClient[Litestar], world: World, town: Town, town_files: dict[str, Path],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Every area, count, address and elector of the town lands; electors match their addresses."""
    reports = await import_town(client, world, town_files)
    assert reports["boundaries"]["rows_written"] == len(town.areas)
    assert reports["census"]["unmatched"] == 0
    assert reports["addresses"]["rows_written"] == len(town.addresses)
    assert reports["register"]["rows_written"] == len(town.electors)
    assert reports["register"]["unmatched"] <= len(town.electors) * 0.01
    async with sessionmaker() as session:
        area = await session.scalar(select(CensusArea).where(CensusArea.code == town.areas[0].code))
        assert area is not None and area.counts["total"] == town.areas[0].counts["total"]
        assert await session.scalar(select(func.count()).select_from(Address)) == len(town.addresses)
        assert await session.scalar(select(func.count()).select_from(Person).where(Person.address_id.is_not(None))) >= len(town.electors) * 0.99


async def test_bad_census_row_refuses_whole_file(
    client: AsyncTestClient[Litestar], world: World, town_files: dict[str, Path], tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A bad row is reported by line number and nothing is imported; skip_bad_rows imports the rest."""
    await upload(client, world, "boundaries", town_files["areas"])
    lines = town_files["census"].read_text().splitlines()
    fields = lines[3].split(",")
    fields[2] = "lots"
    lines[3] = ",".join(fields)
    bad = tmp_path / "bad_census.csv"
    bad.write_text("\n".join(lines) + "\n")
    refused = await upload(client, world, "census", bad)
    assert refused.status_code == 422  # type: ignore[attr-defined]
    body = refused.json()  # type: ignore[attr-defined]
    assert "line 4" in body["detail"] and body["errors"][0]["field"] == "line 4"
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(CensusArea).where(CensusArea.census_table.is_not(None))) == 0
    accepted = await upload(client, world, "census", bad, skip_bad_rows=True)
    assert accepted.status_code == 201  # type: ignore[attr-defined]
    assert accepted.json()["rows_skipped"] == 1 and accepted.json()["errors"][0]["line"] == 4  # type: ignore[attr-defined]


async def test_rank_matches_direct_computation(client: AsyncTestClient[Litestar], world: World, town: Town, town_files: dict[str, Path]) -> None:
    """The BAME-share ranking equals a computation straight from the town's counts."""
    await import_town(client, world, town_files)
    response = await client.get(
        f"/api/campaigns/{world.campaign_a}/areas/rank", params={"measure": "bame_share", "threshold": 0.5}, headers=world.auth("lead")
    )
    assert response.status_code == 200, response.text
    ranked = response.json()
    white = ("white_british", "white_irish", "white_gypsy_traveller", "white_other")
    expected = sorted(
        ((1 - sum(a.counts[w] for w in white) / a.counts["total"], a.code) for a in town.areas if a.counts["total"]),
        reverse=True,
    )
    expected_codes = [code for share, code in expected if share >= 0.5]
    assert [f["properties"]["code"] for f in ranked["features"]] == expected_codes
    assert ranked["features"][0]["properties"]["rank"] == 1
    assert ranked["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    custom = await client.get(
        f"/api/campaigns/{world.campaign_a}/areas/rank", params={"measure": "bangladeshi / total", "top_n": 3}, headers=world.auth("lead")
    )
    assert custom.json()["count"] == 3
    unknown = await client.get(
        f"/api/campaigns/{world.campaign_a}/areas/rank", params={"measure": "martians / total"}, headers=world.auth("lead")
    )
    assert unknown.status_code == 422 and "martians" in unknown.json()["detail"]


async def test_target_from_polygon_preview(client: AsyncTestClient[Litestar], world: World, town: Town, town_files: dict[str, Path]) -> None:
    """A drawn polygon's preview counts the doors and electors inside it, independently recomputed."""
    await import_town(client, world, town_files)
    lons = np.array([a.lon for a in town.addresses])
    lats = np.array([a.lat for a in town.addresses])
    poly = box(np.quantile(lons, 0.2), np.quantile(lats, 0.2), np.quantile(lons, 0.6), np.quantile(lats, 0.6))
    response = await client.post(
        f"/api/campaigns/{world.campaign_a}/targets",
        json={"name": "South-west", "polygon": mapping(poly), "measure": "bame_share"},
        headers=world.auth("organiser"),
    )
    assert response.status_code == 201, response.text
    target = response.json()
    inside = shapely.contains_xy(poly, lons, lats)
    assert target["preview"]["addresses"] == int(inside.sum())
    uprns_inside = {a.uprn for a, ok in zip(town.addresses, inside, strict=True) if ok}
    electors_inside = sum(1 for e in town.electors if e.uprn in uprns_inside)
    assert abs(target["preview"]["electors"] - electors_inside) <= max(2, electors_inside * 0.01)
    assert target["preview"]["estimated_residents"]["total"] > 0
    assert target["rule"]["polygon"] is True and target["rule"]["measure"] == "bame_share"
    listed = (await client.get(f"/api/campaigns/{world.campaign_a}/targets", headers=world.auth("lead"))).json()
    assert [t["id"] for t in listed] == [target["id"]]


async def test_bad_polygons_are_clear_4xx(client: AsyncTestClient[Litestar], world: World, town: Town, town_files: dict[str, Path]) -> None:
    """A bow-tie is repaired; a line, an empty target and a million vertices are refused with 4xx."""
    await import_town(client, world, town_files)
    lon0, lat0 = town.addresses[0].lon, town.addresses[0].lat
    bowtie = {"type": "Polygon", "coordinates": [[[lon0, lat0], [lon0 + 0.004, lat0 + 0.004], [lon0 + 0.004, lat0], [lon0, lat0 + 0.004], [lon0, lat0]]]}
    repaired = await client.post(f"/api/campaigns/{world.campaign_a}/targets/preview", json={"name": "bow", "polygon": bowtie}, headers=world.auth("organiser"))
    assert repaired.status_code == 200, repaired.text
    line = {"type": "LineString", "coordinates": [[lon0, lat0], [lon0 + 0.01, lat0]]}
    refused = await client.post(f"/api/campaigns/{world.campaign_a}/targets", json={"name": "l", "polygon": line}, headers=world.auth("organiser"))
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "polygon"
    far = mapping(box(10, 10, 10.01, 10.01))
    empty = await client.post(
        f"/api/campaigns/{world.campaign_a}/targets", json={"name": "far", "polygon": far, "area_codes": [town.areas[0].code]}, headers=world.auth("organiser")
    )
    assert empty.status_code == 422
    angles = np.linspace(0, 2 * np.pi, 200_000)
    ring = [[lon0 + 0.01 * float(np.cos(a)), lat0 + 0.01 * float(np.sin(a))] for a in angles]
    ring.append(ring[0])
    huge = await client.post(
        f"/api/campaigns/{world.campaign_a}/targets", json={"name": "huge", "polygon": {"type": "Polygon", "coordinates": [ring]}}, headers=world.auth("organiser")
    )
    assert huge.status_code in (413, 422)


async def test_unknown_area_codes_rejected(client: AsyncTestClient[Litestar], world: World, town_files: dict[str, Path]) -> None:
    """Area codes that are not the campaign's are named in the error."""
    await import_town(client, world, town_files)
    response = await client.post(
        f"/api/campaigns/{world.campaign_a}/targets", json={"name": "x", "area_codes": ["E00000001"]}, headers=world.auth("organiser")
    )
    assert response.status_code == 422 and "E00000001" in response.json()["detail"]


async def test_import_into_one_campaign_never_changes_another(
    client: AsyncTestClient[Litestar], world: World, town: Town, town_files: dict[str, Path], tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Campaign B imports the same census codes with other boundaries and counts: A's areas, ranking and previews do not move."""
    await import_town(client, world, town_files)
    url_a = f"/api/campaigns/{world.campaign_a}"
    before = (await client.get(f"{url_a}/areas/", headers=world.auth("lead"))).json()
    ranked_before = (await client.get(f"{url_a}/areas/rank", params={"measure": "bame_share"}, headers=world.auth("lead"))).json()
    first = town.areas[0]
    # B's files: every population becomes 100,000 and every polygon moves far away.
    lines = town_files["census"].read_text().splitlines()
    total_at = 1  # KS201EW0001, all usual residents
    forged = [lines[0]] + [",".join(f if i != total_at else "100000" for i, f in enumerate(line.split(","))) for line in lines[1:]]
    census_b = tmp_path / "census_b.csv"
    census_b.write_text("\n".join(forged) + "\n")
    import json

    areas = json.loads(town_files["areas"].read_text())
    for feature in areas["features"]:
        feature["geometry"] = mapping(box(10, 10, 10.001, 10.001))
    areas_b = tmp_path / "areas_b.geojson"
    areas_b.write_text(json.dumps(areas))
    url_b = f"/api/campaigns/{world.campaign_b}"
    for kind, path in (("boundaries", areas_b), ("census", census_b)):
        response = await client.post(f"{url_b}/imports/{kind}", files={"data": (path.name, path.read_bytes())}, headers=world.auth("superuser"))
        assert response.status_code == 201, response.text
    after = (await client.get(f"{url_a}/areas/", headers=world.auth("lead"))).json()
    assert after == before
    assert next(a for a in after if a["code"] == first.code)["population"] == first.counts["total"]
    ranked_after = (await client.get(f"{url_a}/areas/rank", params={"measure": "bame_share"}, headers=world.auth("lead"))).json()
    assert ranked_after == ranked_before
    in_b = (await client.get(f"{url_b}/areas/", headers=world.auth("superuser"))).json()
    assert {a["code"] for a in in_b} == {a["code"] for a in before}
    assert {a["population"] for a in in_b} == {100000}
    async with sessionmaker() as session:
        rows = (await session.execute(select(CensusArea.campaign_id, CensusArea.population).where(CensusArea.code == first.code))).all()
        assert sorted(rows) == sorted([(world.campaign_a, first.counts["total"]), (world.campaign_b, 100000)])
    # A target in A by area code uses A's polygon, not B's far-away one.
    target = await client.post(f"{url_a}/targets/preview", json={"name": "a", "area_codes": [first.code]}, headers=world.auth("organiser"))
    assert target.status_code == 200, target.text
    assert target.json()["addresses"] > 0


def _zip(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


async def test_bad_boundary_files_are_clear_4xx(client: AsyncTestClient[Litestar], world: World, town_files: dict[str, Path], tmp_path: Path) -> None:
    """A zip with no layer, a zip with a `../` member (zip-slip) and GeoJSON with a one-point or otherwise broken ring: 422, nothing written."""
    url = f"/api/campaigns/{world.campaign_a}/imports/boundaries"
    import json

    def one_feature(coordinates: object, kind: str = "Polygon") -> bytes:
        feature = {"type": "Feature", "properties": {"OA11CD": "E00000001", "name": "x"}, "geometry": {"type": kind, "coordinates": coordinates}}
        return json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()

    cases = {
        "nolayer.zip": _zip({"readme.txt": b"no shapefile here"}),
        "slip.zip": _zip({"../../evil.geojson": town_files["areas"].read_bytes()}),
        "abs.zip": _zip({"/tmp/evil.geojson": town_files["areas"].read_bytes()}),
        "one_point.geojson": one_feature([[[-0.05, 51.5]]]),
        "two_points.geojson": one_feature([[[-0.05, 51.5], [-0.04, 51.5]]]),
        "open_ring.geojson": one_feature([[[-0.05, 51.5], [-0.04, 51.5], [-0.04, 51.51], [-0.05, 51.51]]]),
        "nan.geojson": one_feature([[[-0.05, 51.5], [-0.04, 51.5], [-0.04, "x"], [-0.05, 51.5]]]),
        "point.geojson": one_feature([-0.05, 51.5], "Point"),
    }
    for name, content in cases.items():
        response = await client.post(url, files={"data": (name, content)}, headers=world.auth("organiser"))
        assert response.status_code == 422, (name, response.status_code, response.text[:300])
        assert response.headers["content-type"].startswith("application/problem+json")
    assert not Path("/tmp/evil.geojson").exists()
    assert (await client.get(f"/api/campaigns/{world.campaign_a}/areas/", headers=world.auth("organiser"))).json() == []


async def test_swapped_longitude_and_latitude_is_explained(
    client: AsyncTestClient[Litestar], world: World, town: Town, town_files: dict[str, Path]
) -> None:
    """A polygon drawn [lat, lon] misses the campaign but would cover it swapped: 422 saying so, not a silent 0-door target."""
    await import_town(client, world, town_files)
    lons = np.array([a.lon for a in town.addresses])
    lats = np.array([a.lat for a in town.addresses])
    poly = box(np.quantile(lons, 0.2), np.quantile(lats, 0.2), np.quantile(lons, 0.6), np.quantile(lats, 0.6))
    swapped = shapely.transform(poly, lambda xy: xy[:, ::-1])
    for path in ("/targets/preview", "/targets"):
        response = await client.post(
            f"/api/campaigns/{world.campaign_a}{path}", json={"name": "swapped", "polygon": mapping(swapped)}, headers=world.auth("organiser")
        )
        assert response.status_code == 422, response.text
        body = response.json()
        assert "swapped" in body["detail"] and body["errors"][0]["field"] == "polygon", body
    right = await client.post(f"/api/campaigns/{world.campaign_a}/targets/preview", json={"name": "ok", "polygon": mapping(poly)}, headers=world.auth("organiser"))
    assert right.status_code == 200 and right.json()["addresses"] > 0


async def test_register_imports_and_member_lists_are_audited(
    client: AsyncTestClient[Litestar], world: World, town: Town, town_files: dict[str, Path], sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A register import and each read of the member list leave an audit event: who, what, campaign, how many rows."""
    from server.db.models import AuditEvent

    reports = await import_town(client, world, town_files)
    members = (await client.get(f"/api/campaigns/{world.campaign_a}/members", headers=world.auth("lead"))).json()
    async with sessionmaker() as session:
        events = (await session.execute(
            select(AuditEvent.action, AuditEvent.resource, AuditEvent.user_id, AuditEvent.campaign_id, AuditEvent.row_count).order_by(AuditEvent.id)
        )).all()
    assert ("import", "imports/register", world.users["organiser"], world.campaign_a, reports["register"]["rows_written"]) in [tuple(e) for e in events]
    assert ("read", "members", world.users["lead"], world.campaign_a, len(members)) in [tuple(e) for e in events]
