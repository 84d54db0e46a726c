"""The canvasser app's server side on SQLite and PostgreSQL: page, manifest, service worker,
static files, the join link, and the street layer endpoint (scope, bad input, caching)."""

from __future__ import annotations

import re

import msgspec
import pytest
import shapely
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Address, Assignment, Building, Street, WalkList, WalkListStop
from server.phone.controllers import SHELL_FILES, STATIC_DIR
from server.settings import Settings
from tests.conftest import World


async def test_app_page_is_served_inside_the_worker_scope_without_inline_script(client: AsyncTestClient[Litestar]) -> None:
    """/app redirects to /app/; the page loads only same-origin files and has no inline script or handler."""
    redirect = await client.get("/app", follow_redirects=False)
    assert redirect.status_code in (301, 302, 307, 308) and redirect.headers["location"].endswith("/app/")
    page = await client.get("/app/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    html = page.text
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []  # every script is a file
    assert not re.search(r"\son[a-z]+=", html) and "javascript:" not in html and "style=" not in html
    join = await client.get("/app/join?code=ABCD2345")
    assert join.status_code == 200 and join.text == html


async def test_the_app_may_ask_for_the_position_and_nothing_else_may(client: AsyncTestClient[Litestar]) -> None:
    """The list map shows the canvasser's position (Geolocation, asked by the app's own page): the
    app's pages allow geolocation for our origin only; the console and the API keep it off."""
    for path in ("/app/", "/app/join"):
        policy = (await client.get(path)).headers["permissions-policy"]
        assert "geolocation=(self)" in policy and "camera=()" in policy and "microphone=()" in policy, (path, policy)
    for path in ("/console/", "/ready"):
        assert "geolocation=()" in (await client.get(path)).headers["permissions-policy"], path


async def test_old_join_links_lead_to_the_app(client: AsyncTestClient[Litestar]) -> None:
    """A join link printed before the app existed (/join/CODE) now opens the app's join screen."""
    response = await client.get("/join/ABCD2345", follow_redirects=False)
    assert response.status_code in (301, 302, 307, 308)
    assert response.headers["location"] == "/app/join?code=ABCD2345"


async def test_join_code_url_opens_the_app(client: AsyncTestClient[Litestar], world: World) -> None:
    """The join URL an organiser shares (and puts in a QR code) is the app's join screen."""
    response = await client.post(f"/api/campaigns/{world.campaign_a}/join-codes", json={}, headers=world.auth("organiser"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["join_url"].endswith(f"/app/join?code={body['code']}")


async def test_manifest_and_service_worker(client: AsyncTestClient[Litestar]) -> None:
    """Installable: standalone manifest with PNG icons; the worker at /app/sw.js precaches every shell file."""
    manifest = await client.get("/app/manifest.webmanifest")
    assert manifest.status_code == 200 and manifest.headers["content-type"].startswith("application/manifest+json")
    data = manifest.json()
    assert data["display"] == "standalone" and data["scope"] == "/app/" and data["start_url"] == "/app/"
    assert {icon["sizes"] for icon in data["icons"]} == {"192x192", "512x512"}
    worker = await client.get("/app/sw.js")
    assert worker.status_code == 200 and "javascript" in worker.headers["content-type"]
    shell = msgspec.json.decode(worker.text.split("const SHELL = ", 1)[1].split(";\n", 1)[0])
    assert shell[:2] == ["/app/", "/app/manifest.webmanifest"]
    assert shell[2:] == [f"/app/static/{name}" for name in SHELL_FILES]
    for name in SHELL_FILES:
        if name.startswith("vendor/") and not (STATIC_DIR / "vendor" / ".built").exists():
            continue  # built by `make phone`; the e2e tests require it
        response = await client.get(f"/app/static/{name}")
        assert response.status_code == 200, name


async def test_static_files_do_not_escape_the_folder(client: AsyncTestClient[Litestar]) -> None:
    """Path traversal gets a problem detail, never a file from elsewhere."""
    for path in ("/app/static/../controllers.py", "/app/static/%2e%2e/controllers.py", "/app/static/nope.js"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")


async def _street_world(sessionmaker: async_sessionmaker[AsyncSession], world: World) -> tuple[int, int]:
    """Two streets (one far away), a list of two doors on the near one, assigned to the canvasser; and an unassigned list."""
    async with sessionmaker() as session:
        near = shapely.LineString([(-1.5, 52.0), (-1.499, 52.0), (-1.4985, 52.00000001), (-1.498, 52.0)])
        far = shapely.LineString([(-1.0, 53.0), (-0.99, 53.0)])
        for name, line in (("Mill Road", near), ("Far Lane", far)):
            minx, miny, maxx, maxy = line.bounds
            session.add(Street(campaign_id=world.campaign_a, name=name, highway="residential", geometry=shapely.to_wkb(line),
                               min_lon=minx, min_lat=miny, max_lon=maxx, max_lat=maxy, source="test"))
        lists = []
        for n in range(2):
            walk_list = WalkList(campaign_id=world.campaign_a, name=f"L{n}", status="ready", doors=2,
                                 route=shapely.to_wkb(shapely.LineString([(-1.5, 52.0), (-1.499, 52.0)])))
            session.add(walk_list)
            await session.flush()
            for d in range(2):
                address = Address(campaign_id=world.campaign_a, lines=[f"{d} Mill Road"], postcode="AB1 2CD", lon=-1.5 + d * 0.001, lat=52.0,
                                  building_key=f"{n}-{d}", street="Mill Road", house_number=str(d))
                session.add(address)
                await session.flush()
                session.add(WalkListStop(walk_list_id=walk_list.id, address_id=address.id, stop_number=d, position=d))
            lists.append(walk_list.id)
        session.add(Assignment(walk_list_id=lists[0], user_id=world.users["canvasser"]))
        await session.commit()
    return lists[0], lists[1]


async def test_street_layer_for_a_list_and_a_bbox(
    client: AsyncTestClient[Litestar], world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Streets around the canvasser's list (simplified) with its route; a bbox for the console; others' lists refused."""
    mine, other = await _street_world(sessionmaker, world)
    base = f"/api/campaigns/{world.campaign_a}/streets.geojson"
    response = await client.get(base, params={"walk_list_id": mine}, headers=world.auth("canvasser"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    layer = response.json()
    kinds = sorted((f["properties"]["kind"], f["properties"].get("name", "")) for f in layer["features"])
    assert kinds == [("route", ""), ("street", "Mill Road")]
    street = next(f for f in layer["features"] if f["properties"]["kind"] == "street")
    assert len(street["geometry"]["coordinates"]) < 4  # the near-collinear vertex is simplified away
    again = await client.get(base, params={"walk_list_id": mine}, headers=world.auth("canvasser"))
    assert again.content == response.content
    refused = await client.get(base, params={"walk_list_id": other}, headers=world.auth("canvasser"))
    assert refused.status_code == 403
    bbox = await client.get(base, params={"bbox": "-1.55,51.95,-1.45,52.05"}, headers=world.auth("organiser"))
    assert [f["properties"]["name"] for f in bbox.json()["features"]] == ["Mill Road"]
    for params in ({}, {"bbox": "1,2,3"}, {"bbox": "0,0,5,5"}, {"bbox": "a,b,c,d"}, {"walk_list_id": mine, "bbox": "-1.55,51.95,-1.45,52.05"}):
        bad = await client.get(base, params=params, headers=world.auth("organiser"))
        assert bad.status_code == 422, (params, bad.text)
        assert bad.headers["content-type"].startswith("application/problem+json")
    outsider = await client.get(base, params={"bbox": "-1.55,51.95,-1.45,52.05"}, headers=world.auth("other_canvasser"))
    assert outsider.status_code == 403


async def test_street_layer_draws_buildings_in_narrow_views_and_gzips(
    client: AsyncTestClient[Litestar], world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Building outlines near the list come with the streets (valid, simplified polygons); a wide
    console view gets streets only and says so; `buildings=false` leaves them out; gzip on request;
    a new import (more buildings) is not hidden by the cache."""
    mine, _other = await _street_world(sessionmaker, world)
    base = f"/api/campaigns/{world.campaign_a}/streets.geojson"

    async def add_building(lon: float) -> None:
        outline = shapely.Polygon([(lon, 52.0001), (lon + 0.0001, 52.0001), (lon + 0.0001, 52.0002),
                                   (lon + 0.00005, 52.00020001), (lon, 52.0002)])
        async with sessionmaker() as session:
            minx, miny, maxx, maxy = outline.bounds
            session.add(Building(campaign_id=world.campaign_a, building="house", geometry=shapely.to_wkb(outline),
                                 min_lon=minx, min_lat=miny, max_lon=maxx, max_lat=maxy, source="test"))
            far = shapely.box(-1.0, 53.0, -0.9999, 53.0001)
            session.add(Building(campaign_id=world.campaign_a, building="house", geometry=shapely.to_wkb(far),
                                 min_lon=-1.0, min_lat=53.0, max_lon=-0.9999, max_lat=53.0001, source="test"))
            await session.commit()

    await add_building(-1.4995)
    response = await client.get(base, params={"walk_list_id": mine}, headers={**world.auth("canvasser"), "Accept-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.headers["content-encoding"] == "gzip"
    layer = response.json()
    assert layer["buildings"] == "included"
    outlines = [f for f in layer["features"] if f["properties"]["kind"] == "building"]
    assert [f["properties"]["building"] for f in outlines] == ["house"]  # the far one is outside the view
    ring = outlines[0]["geometry"]["coordinates"][0]
    assert outlines[0]["geometry"]["type"] == "Polygon" and len(ring) == 5  # the near-collinear vertex dropped
    assert shapely.geometry.shape(outlines[0]["geometry"]).is_valid
    plain = await client.get(base, params={"walk_list_id": mine}, headers={**world.auth("canvasser"), "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == layer

    narrow = await client.get(base, params={"bbox": "-1.51,51.99,-1.49,52.01"}, headers=world.auth("organiser"))
    assert [f["properties"]["kind"] for f in narrow.json()["features"]].count("building") == 1
    wide = await client.get(base, params={"bbox": "-1.55,51.95,-1.45,52.05"}, headers=world.auth("organiser"))
    assert wide.json()["buildings"] == "zoom_in"
    assert [f["properties"]["kind"] for f in wide.json()["features"]] == ["street"]
    off = await client.get(base, params={"bbox": "-1.51,51.99,-1.49,52.01", "buildings": "false"}, headers=world.auth("organiser"))
    assert [f["properties"]["kind"] for f in off.json()["features"]] == ["street"]

    await add_building(-1.4990)  # a new import: the cached answer is not served
    again = await client.get(base, params={"walk_list_id": mine}, headers=world.auth("canvasser"))
    assert [f["properties"]["kind"] for f in again.json()["features"]].count("building") == 2


async def test_street_layer_answers_a_device_token(
    client: AsyncTestClient[Litestar], world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The phone asks with its device token (the password token is long gone by then)."""
    mine, _other = await _street_world(sessionmaker, world)
    registered = await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": "phone"}, headers=world.auth("canvasser"))
    assert registered.status_code == 201, registered.text
    device = {"Authorization": f"Bearer {registered.json()['token']}"}
    response = await client.get(f"/api/campaigns/{world.campaign_a}/streets.geojson", params={"walk_list_id": mine}, headers=device)
    assert response.status_code == 200, response.text


async def test_demo_phone_link_is_a_working_join_link(
    client: AsyncTestClient[Litestar], world: World, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """`make run` prints a join link of the demo campaign; a volunteer can join with its code."""
    from server.db.models import Campaign
    from server.demo import DEMO_SLUG
    from server.errors import NotFound
    from server.phone.demo_link import demo_join_link

    async with sessionmaker() as session:
        with pytest.raises(NotFound):
            await demo_join_link(session, settings, "192.0.2.7", 8000)
        campaign = await session.get(Campaign, world.campaign_a)
        assert campaign is not None
        campaign.slug = DEMO_SLUG
        await session.commit()
    async with sessionmaker() as session:
        link = await demo_join_link(session, settings, "192.0.2.7", 8000)
        await session.commit()
    assert link.startswith("http://192.0.2.7:8000/app/join?code=")
    code = link.rsplit("=", 1)[1]
    joined = await client.post("/api/auth/join", json={"code": code, "display_name": "New Volunteer", "email": "new@example.org", "password": "long enough password"})
    assert joined.status_code == 202, joined.text


async def test_a_view_over_the_street_cap_keeps_major_roads_and_says_it_is_partial(
    client: AsyncTestClient[Litestar], world: World, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A view holding more streets than one answer carries keeps the major roads (then the rest in a fixed
    order) and says the layer is partial, rather than an arbitrary subset of the streets."""
    import server.phone.layers as layers

    monkeypatch.setattr(layers, "MAX_STREETS", 3)
    async with sessionmaker() as session:
        kinds = ["service", "footway", "residential", "primary", "service", "trunk", "residential", "secondary"]
        for n, highway in enumerate(kinds):
            line = shapely.LineString([(-1.5 + n * 0.001, 52.0), (-1.5 + n * 0.001, 52.001)])
            minx, miny, maxx, maxy = line.bounds
            session.add(Street(campaign_id=world.campaign_a, name=f"{highway} {n}", highway=highway, geometry=shapely.to_wkb(line),
                               min_lon=minx, min_lat=miny, max_lon=maxx, max_lat=maxy, source="test"))
        await session.commit()
    base = f"/api/campaigns/{world.campaign_a}/streets.geojson"
    layer = (await client.get(base, params={"bbox": "-1.51,51.99,-1.49,52.01"}, headers=world.auth("organiser"))).json()
    assert sorted(f["properties"]["highway"] for f in layer["features"]) == ["primary", "secondary", "trunk"]
    assert layer["streets"] == "major_first"
    few = (await client.get(base, params={"bbox": "-1.5005,51.99,-1.4995,52.01"}, headers=world.auth("organiser"))).json()
    assert [f["properties"]["highway"] for f in few["features"]] == ["service"] and few["streets"] == "all"
