"""The organiser's whole flow from the command line: rank, target, cut, assign, export, users add.

Each test runs the real `canvass` CLI in a subprocess on SQLite and on PostgreSQL and checks the
result against the HTTP API (the same services), so the CLI cannot drift from it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import gpxpy
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from server.cli import app as cli_app
from server.db.models import (
    Address,
    AuditEvent,
    CensusArea,
    Membership,
    Role,
    Target,
    User,
    WalkList,
)
from server.demo import DEMO_PASSWORD, DEMO_SLUG, load_demo
from tests.clirun import one_line_error, run_cli

VERBS = (["rank"], ["target"], ["cut"], ["assign"], ["export"], ["lists"], ["users", "add"], ["users", "create"])


@pytest.mark.parametrize("verb", VERBS, ids=[" ".join(v) for v in VERBS])
def test_every_verb_has_help(verb: list[str]) -> None:
    """`canvass VERB --help` explains the verb and exits 0."""
    result = CliRunner().invoke(cli_app, [*verb, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and "--campaign" in result.output


@dataclass
class Demo:
    """The demo town loaded, with an organiser's API token."""

    campaign_id: int
    headers: dict[str, str]


@pytest.fixture
async def demo(client: AsyncTestClient[Litestar], sessionmaker: async_sessionmaker[AsyncSession]) -> Demo:
    """Load the demo town and sign in as its organiser."""
    async with sessionmaker() as session:
        summary = await load_demo(session)
        session.add(User(email="newcomer@example.org", display_name="Newcomer", password_hash=None))
        await session.commit()
    login = await client.post("/api/auth/login", json={"email": "organiser@demo.canvass", "password": DEMO_PASSWORD})
    return Demo(campaign_id=summary.campaign_id, headers={"Authorization": f"Bearer {login.json()['access_token']}"})


async def test_rank_and_target_match_the_api(
    client: AsyncTestClient[Litestar], demo: Demo, db_url: str, tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """`rank --top 5` prints the API's top five; `target` from top N, a threshold and a GeoJSON polygon each store a target."""
    api = (await client.get(f"/api/campaigns/{demo.campaign_id}/areas/rank", params={"measure": "bame_share", "top_n": 5}, headers=demo.headers)).json()
    top = [f["properties"]["code"] for f in api["features"]]
    ranked = await run_cli(db_url, "rank", "-c", DEMO_SLUG, "--top", "5", "--geojson", str(tmp_path / "rank.geojson"))
    assert ranked.code == 0, ranked.err
    printed = [line.split()[1] for line in ranked.out.splitlines() if line.split() and line.split()[0].isdigit()]
    assert printed == top
    assert [f["properties"]["code"] for f in json.loads((tmp_path / "rank.geojson").read_text())["features"]] == top

    by_top = await run_cli(db_url, "target", "Top five", "-c", DEMO_SLUG, "--top", "5")
    assert by_top.code == 0, by_top.err
    by_threshold = await run_cli(db_url, "target", "Over half", "-c", DEMO_SLUG, "--threshold", "0.5")
    assert by_threshold.code == 0, by_threshold.err
    async with sessionmaker() as session:
        minx, miny, maxx, maxy = (await session.execute(select(func.min(Address.lon), func.min(Address.lat), func.max(Address.lon), func.max(Address.lat)))).one()
    ring = [[minx, miny], [(minx + maxx) / 2, miny], [(minx + maxx) / 2, (miny + maxy) / 2], [minx, (miny + maxy) / 2], [minx, miny]]
    polygon = tmp_path / "drawn.geojson"
    polygon.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    drawn = await run_cli(db_url, "target", "Drawn", "-c", DEMO_SLUG, "--polygon", str(polygon))
    assert drawn.code == 0, drawn.err
    targets = {t["name"]: t for t in (await client.get(f"/api/campaigns/{demo.campaign_id}/targets", headers=demo.headers)).json()}
    assert sorted(targets["Top five"]["rule"]["area_codes"]) == sorted(top)
    threshold_api = (await client.get(f"/api/campaigns/{demo.campaign_id}/areas/rank", params={"measure": "bame_share", "threshold": 0.5}, headers=demo.headers)).json()
    assert sorted(targets["Over half"]["rule"]["area_codes"]) == sorted(f["properties"]["code"] for f in threshold_api["features"])
    drawn_target = (await client.get(f"/api/campaigns/{demo.campaign_id}/targets/{targets['Drawn']['id']}", headers=demo.headers)).json()
    assert drawn_target["rule"]["polygon"] is True and drawn_target["preview"]["addresses"] > 0
    assert f"{drawn_target['preview']['addresses']} doors" in drawn.out

    neither = one_line_error(await run_cli(db_url, "target", "Nothing", "-c", DEMO_SLUG))
    assert "--top" in neither and "--threshold" in neither and "--polygon" in neither
    missing = one_line_error(await run_cli(db_url, "target", "Lost", "-c", DEMO_SLUG, "--polygon", str(tmp_path / "nope.geojson")))
    assert "nope.geojson" in missing
    unknown = one_line_error(await run_cli(db_url, "rank", "-c", DEMO_SLUG, "--measure", "martians / total"))
    assert "martians" in unknown
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Target)) == 3


async def test_cut_assign_export_through_the_cli(
    client: AsyncTestClient[Litestar], demo: Demo, db_url: str, tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """`cut` makes the lists the API then shows (with routing), `assign` gives one to a canvasser, `export` writes PDF/CSV/GeoJSON/GPX."""
    assert (await run_cli(db_url, "target", "Top five", "-c", DEMO_SLUG, "--top", "5")).code == 0
    cut = await run_cli(db_url, "cut", "Top five", "-c", DEMO_SLUG, "--size", "30")
    assert cut.code == 0, cut.err
    lists = (await client.get(f"/api/campaigns/{demo.campaign_id}/walklists", headers=demo.headers)).json()
    assert lists and all(w["routing"] == "street_network" for w in lists)
    assert f"{len(lists)} lists" in cut.out and "street_network" in cut.out
    first = lists[0]["id"]
    assigned = await run_cli(db_url, "assign", str(first), "-c", DEMO_SLUG, "--to", "canvasser@demo.canvass", "--as", "organiser@demo.canvass")
    assert assigned.code == 0, assigned.err
    detail = (await client.get(f"/api/campaigns/{demo.campaign_id}/walklists/{first}", headers=demo.headers)).json()
    assert detail["summary"]["assignee"]["display_name"] and detail["summary"]["status"] == "assigned"
    outsider = one_line_error(await run_cli(db_url, "assign", str(first), "-c", DEMO_SLUG, "--to", "newcomer@example.org"))
    assert "not a member" in outsider

    out = tmp_path / "out"
    for fmt in ("pdf", "csv", "geojson", "gpx"):
        exported = await run_cli(db_url, "export", str(first), "-c", DEMO_SLUG, "--format", fmt, "-o", str(out), "--as", "organiser@demo.canvass")
        assert exported.code == 0, exported.err
    assert (out / f"walk-list-{first}.pdf").read_bytes().startswith(b"%PDF")
    rows = list(csv.DictReader((out / f"walk-list-{first}.csv").open()))
    assert {int(r["address_id"]) for r in rows} == {s["address_id"] for s in detail["stops"]}
    assert len(json.loads((out / f"walk-list-{first}.geojson").read_text())["features"]) == len(detail["stops"]) + 1
    gpx = gpxpy.parse((out / f"walk-list-{first}.gpx").read_text())
    assert len(gpx.waypoints) == len({s["stop_number"] for s in detail["stops"]})
    assert gpx.tracks and sum(len(seg.points) for seg in gpx.tracks[0].segments) >= 2
    async with sessionmaker() as session:
        organiser = await session.scalar(select(User.id).where(User.email == "organiser@demo.canvass"))
        audited = (await session.scalars(select(AuditEvent.resource).where(AuditEvent.user_id == organiser, AuditEvent.action == "export"))).all()
    assert {f"walk_list:{first}.{ext}" for ext in ("pdf", "csv", "geojson", "gpx")} <= set(audited)
    every = await run_cli(db_url, "export", "-c", DEMO_SLUG, "--target", "Top five", "--format", "gpx", "-o", str(tmp_path / "all"))
    assert every.code == 0, every.err
    assert len(list((tmp_path / "all").glob("*.gpx"))) == len(lists)

    bad_format = one_line_error(await run_cli(db_url, "export", str(first), "-c", DEMO_SLUG, "--format", "docx", "-o", str(out)))
    assert "docx" in bad_format
    no_target = one_line_error(await run_cli(db_url, "cut", "Nowhere", "-c", DEMO_SLUG))
    assert "Nowhere" in no_target
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(WalkList)) == len(lists)


async def test_users_add_puts_an_existing_user_in_a_campaign(
    demo: Demo, db_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """`users create` on an existing email points to `users add`; `users add` gives the role (and can change it)."""
    exists = one_line_error(await run_cli(db_url, "users", "create", "newcomer@example.org", "--password", "long enough pw", "-c", DEMO_SLUG))
    assert "users add" in exists
    added = await run_cli(db_url, "users", "add", "newcomer@example.org", "-c", DEMO_SLUG, "--role", "canvasser")
    assert added.code == 0, added.err
    promoted = await run_cli(db_url, "users", "add", "newcomer@example.org", "-c", DEMO_SLUG, "--role", "lead")
    assert promoted.code == 0, promoted.err
    async with sessionmaker() as session:
        user_id = await session.scalar(select(User.id).where(User.email == "newcomer@example.org"))
        roles = (await session.scalars(select(Membership.role).where(Membership.user_id == user_id, Membership.campaign_id == demo.campaign_id))).all()
    assert roles == [Role.lead]
    nobody = one_line_error(await run_cli(db_url, "users", "add", "ghost@example.org", "-c", DEMO_SLUG))
    assert "users create" in nobody
    bad_role = one_line_error(await run_cli(db_url, "users", "add", "newcomer@example.org", "-c", DEMO_SLUG, "--role", "king"))
    assert "king" in bad_role


async def test_national_cut_through_the_cli(
    client: AsyncTestClient[Litestar], demo: Demo, db_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """`cut --all --by OA --dask` cuts every target per area on a LocalCluster; each list is named for its area."""
    assert (await run_cli(db_url, "target", "Top five", "-c", DEMO_SLUG, "--top", "5")).code == 0
    assert (await run_cli(db_url, "target", "Top two", "-c", DEMO_SLUG, "--top", "2")).code == 0
    cut = await run_cli(db_url, "cut", "--all", "-c", DEMO_SLUG, "--by", "OA", "--dask", "--workers", "2", "--size", "30")
    assert cut.code == 0, cut.err
    lists = (await client.get(f"/api/campaigns/{demo.campaign_id}/walklists", headers=demo.headers)).json()
    assert {w["target_id"] for w in lists} == {1, 2}
    assert f"cut {len(lists)} lists" in cut.out
    async with sessionmaker() as session:
        codes = set((await session.scalars(select(CensusArea.name).where(CensusArea.kind == "OA"))).all())
    assert all(any(f" {code} " in w["name"] for code in codes) for w in lists), [w["name"] for w in lists]
    assert one_line_error(await run_cli(db_url, "cut", "-c", DEMO_SLUG)).startswith("error: name the targets")
