"""Answers by canvasser and by week, and the hint on suppressed cells, on SQLite and PostgreSQL.

Counts are recomputed with pandas from the seeded rows (tests/test_results.py).
The hint says roughly how many more contacts in a group would typically show a
hidden cell; it is computed from figures that are shown anyway (campaign-wide
shares and the group's contacts), so it never gives a hidden count away.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Answer
from tests.test_results import THRESHOLD, TZ, Seeded, current_answers, frames
from tests.test_results import (
    seeded as seeded,  # the seeded campaign fixture, shared with tests/test_results.py
)


def _cells(body: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(g["code"], q["key"], a["value"]): a for g in body["groups"] for q in g["questions"] for a in q["answers"]}


def _check(body: dict[str, Any], keyed: pd.DataFrame, key: str) -> int:
    """API cells equal the pandas counts, small ones hidden; returns how many were hidden."""
    api = _cells(body)
    expected = keyed.groupby([key, "question_key", "label"]).size()
    assert len(api) == len(expected)
    hidden = 0
    for (k, q, v), n in expected.items():
        assert (str(k), q, v) in api, (sorted({c[0] for c in api}), (k, q, v))
        cell = api[(str(k), q, v)]
        if n < THRESHOLD:
            assert cell["count"] is None and cell["suppressed"], (k, q, v, n)
            hidden += 1
        else:
            assert cell["count"] == n, (k, q, v)
    return hidden


async def test_answers_by_canvasser_and_week(client: AsyncTestClient[Litestar], seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Each respondent's latest answer counted under the canvasser who recorded it, and under the local ISO week it was recorded."""
    cid = seeded.campaign_id
    async with sessionmaker() as session:  # answers recorded across two real weeks (their HLC wall time)
        for n, answer_id in enumerate((await session.execute(Answer.__table__.select().with_only_columns(Answer.id).where(Answer.campaign_id == cid))).scalars()):
            ms = int(datetime(2026, 10, 20 + n % 10, 12, tzinfo=UTC).timestamp() * 1000) + n
            await session.execute(update(Answer).where(Answer.id == answer_id).values(hlc=f"{ms:015d}-00000-node{n % 3}"))
        await session.commit()
        f = await frames(session, cid)
        answer_user = dict((await session.execute(select(Answer.id, Answer.user_id).where(Answer.campaign_id == cid))).all())
    cur = current_answers(f["answers"], f["addresses"])
    cur = cur[cur["question_key"] != "notes"]
    users = await client.get(f"/api/campaigns/{cid}/results/answers", params={"by": "canvasser"}, headers=seeded.auth("lead"))
    assert users.status_code == 200, users.text
    body = users.json()
    by_user = cur.assign(canvasser=cur["id"].map(answer_user).map(lambda u: "" if pd.isna(u) else str(int(u))))
    _check(body, by_user, "canvasser")
    names = {g["code"]: g["name"] for g in body["groups"]}
    assert names[str(seeded.users["canvasser"])] == "Cam Canvasser"

    weeks = await client.get(f"/api/campaigns/{cid}/results/answers", params={"by": "week"}, headers=seeded.auth("lead"))
    assert weeks.status_code == 200, weeks.text
    wall = cur["hlc"].str.slice(0, 15).astype("int64")
    local = pd.to_datetime(wall, unit="ms", utc=True).dt.tz_convert(TZ)
    iso = local.dt.isocalendar()
    by_week = cur.assign(week=iso["year"].astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format))
    assert set(by_week["week"]) == {"2026-W43", "2026-W44"}
    _check(weeks.json(), by_week, "week")
    assert [g["code"] for g in weeks.json()["groups"]] == ["2026-W43", "2026-W44"]
    assert weeks.json()["groups"][0]["name"] == "Week of 19 Oct 2026"


async def test_suppressed_cells_say_how_many_more_contacts_would_show_them(client: AsyncTestClient[Litestar], seeded: Seeded) -> None:
    """Every hidden cell carries a positive estimate of further contacts; shown cells carry none; the note explains it."""
    cid = seeded.campaign_id
    body = (await client.get(f"/api/campaigns/{cid}/results/answers", params={"by": "area"}, headers=seeded.auth("lead"))).json()
    cells = list(_cells(body).values())
    hidden = [c for c in cells if c["suppressed"]]
    assert hidden and all(isinstance(c["more_contacts"], int) and c["more_contacts"] >= 1 for c in hidden)
    assert all(c["more_contacts"] is None for c in cells if not c["suppressed"])
    assert "more contacts" in body["note"]
    # Two hidden cells of the same answer in groups with the same shown contacts get the same estimate, whatever their
    # hidden counts: the estimate is built only from shown figures.
    higher = (await client.get(f"/api/campaigns/{cid}/results/answers", params={"by": "area", "min_count": 40}, headers=seeded.auth("lead"))).json()
    estimates = [c["more_contacts"] for c in _cells(higher).values() if c["suppressed"]]
    assert estimates and min(estimates) >= 1


async def test_unknown_breakdown_is_a_problem(client: AsyncTestClient[Litestar], seeded: Seeded) -> None:
    """An unknown `by` is a 422 problem naming the breakdowns."""
    response = await client.get(f"/api/campaigns/{seeded.campaign_id}/results/answers", params={"by": "ethnicity"}, headers=seeded.auth("lead"))
    assert response.status_code == 422
    assert "canvasser" in response.text and "week" in response.text


def test_map_classes_quantiles_over_the_real_range_and_diverge_at_half() -> None:
    """Classes span the values' real range by quantile; support share diverges at 50%, so 40% and 41.2% sit on the same side."""
    from server.results.services import map_classes

    rates = [0.10, 0.12, 0.15, 0.2, 0.22, 0.3, 0.31, 0.33, 0.5, 0.9]
    classes = map_classes(rates, scheme="sequential")
    assert classes.breaks[0] == 0.10 and classes.breaks[-1] == 0.9
    assert classes.method == "quantile" and 2 <= len(classes.breaks) - 1 <= 5
    assert [classes.class_of(v) for v in (0.10, 0.9)] == [0, len(classes.breaks) - 2]
    assert classes.class_of(None) is None
    share = map_classes([0.40, 0.412, 0.405, 0.55, 0.6], scheme="diverging", midpoint=0.5)
    assert share.midpoint == 0.5 and 0.5 in share.breaks
    below = {share.class_of(v) for v in (0.40, 0.405, 0.412)}
    assert all(share.breaks[c + 1] <= 0.5 for c in below)  # all on the "below half" side
    assert all(share.breaks[share.class_of(v)] >= 0.5 for v in (0.55, 0.6))
    assert map_classes([], scheme="sequential").breaks == []
    assert map_classes([0.3, 0.3], scheme="sequential").breaks == [0.3, 0.3]


async def test_results_map_returns_classes_counts_and_suppressed_areas(client: AsyncTestClient[Litestar], seeded: Seeded) -> None:
    """The map API gives each metric's classes, each area's class and the count behind its figure; suppressed areas have no class."""
    body = (await client.get(f"/api/campaigns/{seeded.campaign_id}/results/map", headers=seeded.auth("lead"))).json()
    classes = body["classes"]
    assert classes["support_share"]["scheme"] == "diverging" and classes["support_share"]["midpoint"] == 0.5
    assert classes["contact_rate"]["scheme"] == "sequential"
    rates = [f["properties"]["contact_rate"] for f in body["features"] if f["properties"]["contact_rate"] is not None]
    assert classes["contact_rate"]["breaks"][0] == min(rates) and classes["contact_rate"]["breaks"][-1] == max(rates)
    for feature in body["features"]:
        p = feature["properties"]
        assert p["contact_rate_count"] == p["doors_knocked"] and p["support_share_count"] == p["respondents"]
        if p["contact_rate"] is None:
            assert p["contact_rate_class"] is None
        else:
            lo, hi = classes["contact_rate"]["breaks"][p["contact_rate_class"]], classes["contact_rate"]["breaks"][p["contact_rate_class"] + 1]
            assert lo <= p["contact_rate"] <= hi
    assert any(f["properties"]["suppressed"] and f["properties"]["support_share_class"] is None for f in body["features"])
