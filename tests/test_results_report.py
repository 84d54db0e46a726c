"""The meeting report PDF, read back as text (pypdf), on SQLite and PostgreSQL.

The figures printed are recomputed independently from the seeded rows
(tests/test_results.py): voting intention, wards and targets by name, the
table by canvasser, sign-up counts, top issues; small counts suppressed.
"""

from __future__ import annotations

import io
import re

import pypdf
import shapely
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import CampaignArea, CensusArea, User
from tests.test_results import THRESHOLD, Seeded, current_answers, frames
from tests.test_results import (
    seeded as seeded,  # the seeded campaign fixture, shared with tests/test_results.py
)


def _flat(text: str) -> str:
    """PDF text with runs of whitespace as one space (table cells come out separated by spaces or newlines)."""
    return re.sub(r"\s+", " ", text)


async def _add_wards(sessionmaker: async_sessionmaker[AsyncSession], cid: int) -> dict[str, str]:
    """Two named wards made of the town's output areas (west and east halves); area code -> ward name."""
    async with sessionmaker() as session:
        oas = (await session.execute(select(CensusArea.code, CensusArea.geometry).where(CensusArea.kind == "OA", CensusArea.campaign_id == cid))).all()
        polys = {c: shapely.from_wkb(g) for c, g in oas}
        midx = shapely.union_all(list(polys.values())).centroid.x
        west = [c for c, p in polys.items() if p.representative_point().x < midx]
        halves = {"Riverside West": west, "Hillcrest East": [c for c in polys if c not in west]}
        for n, (name, members) in enumerate(halves.items()):
            geometry = shapely.union_all([polys[c] for c in members]).buffer(1e-9)
            ward = CensusArea(campaign_id=cid, code=f"W{n}", name=name, kind="ward", geometry=shapely.to_wkb(geometry), counts={})
            session.add(ward)
            await session.flush()
            session.add(CampaignArea(campaign_id=cid, area_id=ward.id))
        await session.commit()
    return {c: name for name, members in halves.items() for c in members}


async def test_meeting_report_holds_the_figures_a_meeting_needs(
    client: AsyncTestClient[Litestar], seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """One to three A4 pages: period, voting intention with numbers, wards and targets by name, canvasser table, sign-ups."""
    cid = seeded.campaign_id
    ward_of = await _add_wards(sessionmaker, cid)
    response = await client.get(f"/api/campaigns/{cid}/exports/report.pdf", headers=seeded.auth("lead"))
    assert response.status_code == 200, response.text
    reader = pypdf.PdfReader(io.BytesIO(response.content))
    assert 1 <= len(reader.pages) <= 3
    for page in reader.pages:  # A4 portrait, in points
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (595, 842)
    text = _flat(" ".join(page.extract_text() for page in reader.pages))

    async with sessionmaker() as session:
        f = await frames(session, cid)
        names = dict((await session.execute(select(User.id, User.display_name))).all())
    att = f["attempts"]
    cur = current_answers(f["answers"], f["addresses"])
    # Period and headline figures.
    days = att["at"].dt.tz_convert("Europe/London").dt.date
    assert f"{days.min():%d %b %Y} to {days.max():%d %b %Y}" in text
    assert f"{att['address_id'].nunique():,} doors knocked" in text
    # Voting intention: every option with its count (or suppressed), campaign-wide.
    vi = cur[cur["question_key"] == "voting_intention"]["label"].value_counts()
    assert "Voting intention" in text
    for option, n in vi.items():  # a suppressed cell shows no share (it would give the count away)
        shown = rf"{int(n):,} \d+%" if n >= THRESHOLD else f"<{THRESHOLD}"
        assert re.search(rf"{re.escape(option)} {shown}", text), (option, shown)
    # Wards by name with their doors knocked and the Red share of voting intention.
    att_area = att.merge(f["addresses"][["address_id", "area_code"]], on="address_id")
    for ward in ("Riverside West", "Hillcrest East"):
        codes = [c for c, w in ward_of.items() if w == ward]
        knocked = att_area[att_area["area_code"].isin(codes)]["address_id"].nunique()
        answers = cur[(cur["question_key"] == "voting_intention") & cur["area_code"].isin(codes)]
        red = (answers["label"] == "Red").sum()
        share = f"{red / len(answers):.0%}" if red >= THRESHOLD else f"<{THRESHOLD}"
        assert re.search(rf"{ward} {knocked:,} \d+% {len(answers):,} {re.escape(share)}", text), (ward, knocked, len(answers), share)
    # Targets by name.
    for target in ("West", "North-east"):
        assert re.search(rf"{target} [\d,]+ \d+%", text), target
    # The table by canvasser: name, doors knocked, contacts, contact rate, knocks.
    assert "By canvasser" in text
    for uid, group in att[att["user_id"].notna()].groupby("user_id"):
        knocked = group["address_id"].nunique()
        contacts = group.loc[group["contact"], "address_id"].nunique()
        row = f"{names[int(uid)]} {knocked:,} {contacts:,} {contacts / knocked:.0%} {len(group):,}"
        assert row in text, row
    # Sign-ups: counts only (no names of the people who signed up).
    joined = ((cur["question_key"] == "would_join") & (cur["label"] == "Yes")).sum()
    volunteers = ((cur["question_key"] == "would_volunteer") & (cur["label"] == "Yes")).sum()
    assert f"Would join {joined:,}" in text and f"Would volunteer {volunteers:,}" in text
    # Top issue named, with its count.
    issues = cur[cur["question_key"] == "top_local_issue"]["label"].value_counts()
    assert f"{issues.index[0]} {int(issues.iloc[0]):,}" in text


async def test_meeting_report_without_wards_says_so(client: AsyncTestClient[Litestar], seeded: Seeded) -> None:
    """With no ward boundaries loaded the report says how to get the ward table, rather than leaving it out silently."""
    response = await client.get(f"/api/campaigns/{seeded.campaign_id}/exports/report.pdf", headers=seeded.auth("lead"))
    assert response.status_code == 200
    text = _flat(" ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(response.content)).pages))
    assert "No ward boundaries are loaded" in text
