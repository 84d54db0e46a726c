"""Target previews estimate residents from whatever census geography the campaign has (OA or LSOA, 2011 or 2021)."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import World
from tests.smallfiles import SQUARES, boundary_file, ts021_file


async def upload(client: AsyncTestClient[Litestar], world: World, kind: str, path: Path, **params: object):  # type: ignore[no-untyped-def]
    """POST a file to an import endpoint as the organiser."""
    response = await client.post(
        f"/api/campaigns/{world.campaign_a}/imports/{kind}", files={"data": (path.name, path.read_bytes())}, params=params, headers=world.auth("organiser"),
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize(("code_field", "codes"), [("LSOA21CD", ("E01000001", "E01000002")), ("OA21CD", ("E00000001", "E00000002"))])
async def test_preview_uses_the_campaigns_2021_areas(
    client: AsyncTestClient[Litestar], world: World, tmp_path: Path, code_field: str, codes: tuple[str, str]
) -> None:
    """A campaign with only 2021 areas (no 2011 OAs) gets residents estimated from them: half of the first square is 500 people."""
    await upload(client, world, "boundaries", boundary_file(tmp_path / "areas.geojson", code_field, codes))
    await upload(client, world, "census", ts021_file(tmp_path / "ts021.csv", code_field, codes))
    x0, y0, x1, y1 = SQUARES[0]
    half = {"type": "Polygon", "coordinates": [[[x0, y0], [(x0 + x1) / 2, y0], [(x0 + x1) / 2, y1], [x0, y1], [x0, y0]]]}
    response = await client.post(f"/api/campaigns/{world.campaign_a}/targets/preview", json={"name": "half", "polygon": half}, headers=world.auth("organiser"))
    assert response.status_code == 200, response.text
    residents = response.json()["estimated_residents"]
    assert residents["total"] == pytest.approx(500, rel=0.02)
    assert residents["bame"] == pytest.approx(300, rel=0.02)  # 1000 - 400 White, halved
    assert [a["code"] for a in response.json()["areas"]] == [codes[0]]


async def test_cli_rank_and_target_default_to_the_campaigns_geography(client: AsyncTestClient[Litestar], world: World, tmp_path: Path, db_url: str) -> None:
    """With only 2021 LSOAs, `canvass rank` and `canvass target --top` work on LSOAs without --kind."""
    from tests.clirun import run_cli

    codes = ("E01000001", "E01000002")
    await upload(client, world, "boundaries", boundary_file(tmp_path / "areas.geojson", "LSOA21CD", codes))
    await upload(client, world, "census", ts021_file(tmp_path / "ts021.csv", "LSOA21CD", codes))
    ranked = await run_cli(db_url, "rank", "-c", "campaign-a")
    assert ranked.code == 0, ranked.err
    assert "ranked 2 LSOAs" in ranked.out and "E01000001" in ranked.out
    target = await run_cli(db_url, "target", "Both", "-c", "campaign-a", "--top", "2")
    assert target.code == 0, target.err
    assert "2 areas" in target.out and "residents total ~2,000" in target.out


async def test_http_rank_defaults_to_the_campaigns_geography(client: AsyncTestClient[Litestar], world: World, tmp_path: Path) -> None:
    """`GET /areas/rank` without `kind` ranks the campaign's finest counted geography: here 2021 LSOAs, not a missing OA layer."""
    codes = ("E01000001", "E01000002")
    await upload(client, world, "boundaries", boundary_file(tmp_path / "areas.geojson", "LSOA21CD", codes))
    await upload(client, world, "census", ts021_file(tmp_path / "ts021.csv", "LSOA21CD", codes))
    response = await client.get(f"/api/campaigns/{world.campaign_a}/areas/rank", headers=world.auth("organiser"))
    assert response.status_code == 200, response.text
    assert sorted(f["properties"]["code"] for f in response.json()["features"]) == list(codes)
    asked = await client.get(f"/api/campaigns/{world.campaign_a}/areas/rank", params={"kind": "OA"}, headers=world.auth("organiser"))
    assert asked.status_code == 404  # asking for a geography the campaign lacks still says so
