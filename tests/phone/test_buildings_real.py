"""Building outlines from the real Camden OSM extract, through the streets import and the street
layer, on SQLite and PostgreSQL (skipped with its reason when the shared data is missing, unless
CANVASS_REQUIRE_REAL_DATA=1)."""

from __future__ import annotations

import gzip

import shapely
from litestar import Litestar
from litestar.testing import AsyncTestClient
from shapely.geometry import shape
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Building
from server.geography.services import import_streets
from tests.conftest import World
from tests.realdata import real_data_path

CAMDEN_PBF = "camden/osm/camden.osm.pbf"
CAMDEN_TOWN = "-0.1480,51.5350,-0.1380,51.5430"
"""About 700 x 900 m around Camden Town station: a phone's or a zoomed-in console's view."""


async def test_camden_buildings_import_and_reach_the_layer(
    client: AsyncTestClient[Litestar], world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    path = real_data_path(CAMDEN_PBF)
    async with sessionmaker() as session:
        report = await import_streets(session, world.campaign_a, path)
        await session.commit()
    assert report.details["buildings"] >= 20_000  # 20,928 outlines in the 2026 extract
    async with sessionmaker() as session:
        stored = await session.scalar(select(func.count()).select_from(Building).where(Building.campaign_id == world.campaign_a))
        assert stored == report.details["buildings"]
        again = await import_streets(session, world.campaign_a, path)  # replaces, never doubles
        await session.commit()
        assert again.details["buildings"] == stored
        assert await session.scalar(select(func.count()).select_from(Building)) == stored

    base = f"/api/campaigns/{world.campaign_a}/streets.geojson"
    response = await client.get(base, params={"bbox": CAMDEN_TOWN}, headers={**world.auth("organiser"), "Accept-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.headers["content-encoding"] == "gzip"
    layer = response.json()
    outlines = [f for f in layer["features"] if f["properties"]["kind"] == "building"]
    streets = [f for f in layer["features"] if f["properties"]["kind"] == "street"]
    assert layer["buildings"] == "included" and len(outlines) > 500 and len(streets) > 50
    view = shapely.box(*map(float, CAMDEN_TOWN.split(",")))
    assert all(shape(f["geometry"]).is_valid and shape(f["geometry"]).intersects(view) for f in outlines)
    body = gzip.compress(response.content)  # what went over the wire, give or take the level
    assert len(body) < 1_000_000, len(body)
    wide = await client.get(base, params={"bbox": "-0.22,51.51,-0.10,51.58"}, headers=world.auth("organiser"))
    assert wide.json()["buildings"] == "zoom_in"
