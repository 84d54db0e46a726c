"""Results on the synthetic town with seeded canvass events, on SQLite and PostgreSQL.

Every figure the API returns is recomputed here independently with pandas over
the seeded rows; suppression, canvasser scope, audited exports, the PDF and the
GeoPackage are checked; the trigger-maintained tallies equal a rebuild after
inserts, corrections, updates and deletes.
"""

from __future__ import annotations

import io
import json
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from litestar import Litestar
from litestar.testing import AsyncTestClient
from shapely.geometry import box
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import (
    Address,
    Answer,
    Assignment,
    AuditEvent,
    CampaignArea,
    CensusArea,
    Conflict,
    ContactAttempt,
    Device,
    MutationResult,
    Person,
    Target,
    User,
    WalkList,
    WalkListStop,
)
from server.demo import DEMO_PASSWORD, load_demo
from server.results.services import rebuild_result_tallies
from server.results.tallies import fold_result_tallies

OUTCOMES = ["spoke", "not_home", "refused", "moved", "deceased", "inaccessible", "come_back", "do_not_visit", "wrong_address"]
WEIGHTS = [30, 35, 8, 4, 1, 5, 8, 2, 2]
CONTACT = {"spoke", "refused"}
TZ = ZoneInfo("Europe/London")
THRESHOLD = 5
ANSWER_VALUES = {
    "voting_intention": ["Red", "Blue", "Yellow", "Green", "Other", "Won't say", "Don't know"],
    "likelihood_to_vote": [str(i) for i in range(1, 11)],
    "top_local_issue": ["Housing", "Cost of living", "NHS", "Crime", "Transport", "Schools", "Environment"],
    "postal_vote": ["Yes", "No"],
    "would_join": ["Yes", "No", "No", "No"],
    "would_volunteer": ["Yes", "No", "No", "No"],
    "call_back": ["Yes", "No", "No"],
    "leaflet_language": ["English", "English", "English", "Bengali", "Somali", "Urdu", "Polish"],
}


@dataclass
class Seeded:
    """What the seed wrote, as plain frames for independent computation, plus tokens."""

    campaign_id: int
    users: dict[str, int]
    tokens: dict[str, str] = field(default_factory=dict)
    lists: dict[int, int | None] = field(default_factory=dict)  # list id -> target id
    targets: dict[int, Any] = field(default_factory=dict)  # target id -> polygon

    def auth(self, who: str) -> dict[str, str]:
        """Authorization header for a demo login."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def hlc(ms: int, n: int = 0) -> str:
    """An HLC string in the sync format (fixed-width wall ms, counter, node)."""
    return f"{ms:015d}-{n:05d}-node{n % 3}"


async def seed(session: AsyncSession) -> Seeded:
    """The demo town plus targets, walk lists, assignments, attempts, answers, consent and sync bookkeeping."""
    rng = random.Random(20261122)
    summary = await load_demo(session)
    cid = summary.campaign_id
    users = {u.email.split("@")[0]: u.id for u in (await session.scalars(select(User))).all()}
    s = Seeded(campaign_id=cid, users=users)
    addresses = (await session.execute(select(Address.id, Address.lon, Address.lat).where(Address.campaign_id == cid).order_by(Address.id))).all()
    minx, maxx = min(a.lon for a in addresses), max(a.lon for a in addresses)
    miny, maxy = min(a.lat for a in addresses), max(a.lat for a in addresses)
    midx = (minx + maxx) / 2
    for name, poly in (("West", box(minx - 0.01, miny - 0.01, midx, maxy + 0.01)), ("North-east", box(midx - 0.002, (miny + maxy) / 2, maxx + 0.01, maxy + 0.01))):
        target = Target(campaign_id=cid, name=name, rule={}, geometry=shapely.to_wkb(poly), min_lon=poly.bounds[0], min_lat=poly.bounds[1], max_lon=poly.bounds[2], max_lat=poly.bounds[3])
        session.add(target)
        await session.flush()
        s.targets[target.id] = poly
    target_ids = list(s.targets)
    ids = [a.id for a in addresses]
    chunks = [ids[i * 180 : (i + 1) * 180] for i in range(7)]
    stops: dict[int, list[int]] = {}
    for i, chunk in enumerate(chunks):
        target_id = target_ids[0] if i < 3 else (target_ids[1] if i < 6 else None)
        wl = WalkList(campaign_id=cid, target_id=target_id, name=f"List {i + 1}", status="ready", doors=len(chunk))
        session.add(wl)
        await session.flush()
        s.lists[wl.id] = target_id
        stops[wl.id] = chunk
        session.add_all([WalkListStop(walk_list_id=wl.id, address_id=a, stop_number=n, position=n) for n, a in enumerate(chunk)])
    list_ids = list(s.lists)
    cam, cam2, lead = users["canvasser"], users["canvasser2"], users["lead"]
    owner = {list_ids[0]: cam, list_ids[1]: cam, list_ids[2]: cam2, list_ids[3]: cam2, list_ids[4]: lead}
    for wl, uid in owner.items():
        session.add(Assignment(walk_list_id=wl, user_id=uid))
    session.add(Assignment(walk_list_id=list_ids[5], user_id=cam, ended_at=datetime.now(UTC)))  # taken away: no longer readable
    people = (await session.execute(select(Person.id, Person.address_id).where(Person.campaign_id == cid))).all()
    people_at: dict[int, list[int]] = {}
    for p in people:
        if p.address_id is not None:
            people_at.setdefault(p.address_id, []).append(p.id)
    start = datetime(2026, 10, 24, 8, 0, tzinfo=UTC)  # spans the end of British Summer Time
    attempts, answers = [], []
    n = 0
    for wl, chunk in stops.items():
        for address_id in chunk:
            if rng.random() > 0.7:
                continue
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                n += 1
                outcome = rng.choices(OUTCOMES, WEIGHTS)[0]
                at = start + timedelta(days=rng.randrange(6), hours=rng.randrange(12), minutes=rng.randrange(60))
                user_id = owner.get(wl, rng.choice([cam, cam2, None]))
                attempts.append(ContactAttempt(id=f"att-{n:06d}", campaign_id=cid, address_id=address_id, walk_list_id=wl, outcome=outcome,
                                               hlc=hlc(n), at=at, user_id=user_id))
                if outcome == "spoke":
                    person_id = rng.choice([*people_at.get(address_id, [None]), None]) if rng.random() < 0.9 else None
                    for key, values in ANSWER_VALUES.items():
                        if rng.random() < 0.8:
                            n += 1
                            answers.append(Answer(id=f"ans-{n:06d}", campaign_id=cid, address_id=address_id, person_id=person_id, walk_list_id=wl,
                                                  question_key=key, value=rng.choice(values), hlc=hlc(n), user_id=user_id))
    # Off-list knocks (no walk list, no user) and one free-text note that must never be aggregated.
    for address_id in rng.sample(ids[1300:], 40):
        n += 1
        attempts.append(ContactAttempt(id=f"att-{n:06d}", campaign_id=cid, address_id=address_id, walk_list_id=None, outcome=rng.choice(OUTCOMES), hlc=hlc(n),
                                       at=start + timedelta(hours=rng.randrange(100)), user_id=None))
    answers.append(Answer(id="ans-note", campaign_id=cid, address_id=ids[0], person_id=None, walk_list_id=list_ids[0], question_key="notes", value="lives alone, dog", hlc=hlc(1)))
    session.add_all(attempts)
    session.add_all(answers)
    await session.flush()
    # Corrections: a later answer for some respondents replaces their earlier one.
    for i, a in enumerate(rng.sample(answers[:-1], 60)):
        n += 1
        session.add(Answer(id=f"fix-{i:04d}", campaign_id=cid, address_id=a.address_id, person_id=a.person_id, walk_list_id=a.walk_list_id,
                           question_key=a.question_key, value=rng.choice(ANSWER_VALUES[a.question_key]), hlc=hlc(n + 10**9), user_id=a.user_id))
    # Consent for half the people.
    for p in people:
        if rng.random() < 0.5:
            await session.execute(update(Person).where(Person.id == p.id).values(contact_consent="doorstep", phone=f"07700 9{p.id:05d}", email=f"p{p.id}@example.org"))
    # Devices and sync bookkeeping.
    now = datetime.now(UTC)
    devices = []
    for i, (uid, last) in enumerate(((cam, now - timedelta(hours=1)), (cam2, now - timedelta(hours=30)), (lead, None))):
        d = Device(user_id=uid, campaign_id=cid, name=f"phone {i}", node_id=f"node-{i}", last_sync_at=last)
        session.add(d)
        await session.flush()
        devices.append(d)
    session.add_all([
        Conflict(campaign_id=cid, entity="address", entity_id=stops[list_ids[0]][0], field="household_note", losing_hlc=hlc(1), winning_hlc=hlc(2), losing_device_id=devices[0].id),
        Conflict(campaign_id=cid, entity="person", entity_id=people_at[stops[list_ids[2]][5]][0] if stops[list_ids[2]][5] in people_at else people[0].id,
                 field="phone", losing_hlc=hlc(1), winning_hlc=hlc(2), losing_device_id=devices[1].id),
        Conflict(campaign_id=cid, entity="address", entity_id=stops[list_ids[0]][1], field="access_note", losing_hlc=hlc(1), winning_hlc=hlc(2),
                 losing_device_id=devices[0].id, resolved_at=now),
        MutationResult(device_id=devices[1].id, seq=1, campaign_id=cid, op="record_attempt", status="rejected", reason="erased", entity="address",
                       entity_id=str(stops[list_ids[3]][0]), user_id=cam2),
        MutationResult(device_id=devices[1].id, seq=2, campaign_id=cid, op="record_attempt", status="applied", entity="address", entity_id="1", user_id=cam2),
        MutationResult(device_id=devices[0].id, seq=1, campaign_id=cid, op="edit", status="rejected", reason="skew", entity="flag", entity_id="x", user_id=cam),
    ])
    await session.commit()
    return s


@pytest.fixture
async def seeded(client: AsyncTestClient[Litestar], sessionmaker: async_sessionmaker[AsyncSession]) -> Seeded:
    """The seeded campaign with lead, canvasser and canvasser2 signed in."""
    async with sessionmaker() as session:
        s = await seed(session)
    for who in ("lead", "canvasser", "canvasser2", "organiser"):
        response = await client.post("/api/auth/login", json={"email": f"{who}@demo.canvass", "password": DEMO_PASSWORD})
        assert response.status_code == 200, response.text
        s.tokens[who] = response.json()["access_token"]
    return s


async def frames(session: AsyncSession, cid: int) -> dict[str, pd.DataFrame]:
    """The seeded rows as pandas frames (the independent side of every comparison)."""
    def df(rows: Any, columns: list[str]) -> pd.DataFrame:
        return pd.DataFrame([tuple(r) for r in rows], columns=columns)

    att = df((await session.execute(select(ContactAttempt.address_id, ContactAttempt.walk_list_id, ContactAttempt.user_id, ContactAttempt.outcome, ContactAttempt.at)
                                    .where(ContactAttempt.campaign_id == cid))).all(), ["address_id", "walk_list_id", "user_id", "outcome", "at"])
    ans = df((await session.execute(select(Answer.id, Answer.address_id, Answer.person_id, Answer.walk_list_id, Answer.question_key, Answer.value, Answer.hlc)
                                    .where(Answer.campaign_id == cid))).all(), ["id", "address_id", "person_id", "walk_list_id", "question_key", "value", "hlc"])
    addr = df((await session.execute(select(Address.id, Address.area_code, Address.lon, Address.lat).where(Address.campaign_id == cid))).all(), ["address_id", "area_code", "lon", "lat"])
    stops = df((await session.execute(select(WalkListStop.walk_list_id, WalkListStop.address_id, WalkList.target_id).join(WalkList, WalkList.id == WalkListStop.walk_list_id)
                                      .where(WalkList.campaign_id == cid))).all(), ["walk_list_id", "address_id", "target_id"])
    asg = df((await session.execute(select(Assignment.walk_list_id, Assignment.user_id).where(Assignment.ended_at.is_(None)))).all(), ["walk_list_id", "user_id"])
    lists = df((await session.execute(select(WalkList.id, WalkList.target_id).where(WalkList.campaign_id == cid))).all(), ["walk_list_id", "target_id"])
    att["at"] = pd.to_datetime(att["at"], utc=True)
    att["contact"] = att["outcome"].isin(CONTACT)
    att = att.merge(lists, on="walk_list_id", how="left")
    return {"attempts": att, "answers": ans, "addresses": addr, "stops": stops, "assignments": asg}


def expected_figures(att: pd.DataFrame, doors: int, remaining: int) -> dict[str, Any]:
    """The progress figures of one group of attempts."""
    knocked = att["address_id"].nunique()
    contacts = att.loc[att["contact"], "address_id"].nunique()
    counts = att["outcome"].value_counts()
    return {
        "doors_knocked": knocked, "contacts": contacts, "contact_rate": round(contacts / knocked, 6) if knocked else None,
        "attempts": len(att), "outcomes": {o: int(counts.get(o, 0)) for o in [*OUTCOMES, "other"]},
        "doors_on_lists": doors, "doors_remaining": remaining,
    }


def figures_of(row: dict[str, Any]) -> dict[str, Any]:
    """The comparable part of one API progress row."""
    return {k: row[k] for k in ("doors_knocked", "contacts", "contact_rate", "attempts", "outcomes", "doors_on_lists", "doors_remaining")}


def current_answers(ans: pd.DataFrame, addr: pd.DataFrame) -> pd.DataFrame:
    """Each respondent's latest answer per question (independently of the SQL)."""
    frame = ans.copy()
    frame["respondent"] = frame.apply(lambda r: f"p{int(r.person_id)}" if pd.notna(r.person_id) else f"a{int(r.address_id)}", axis=1)
    frame = frame.sort_values(["hlc", "id"]).groupby(["question_key", "respondent"]).tail(1)
    frame["label"] = frame["value"].map(str)
    return frame.merge(addr, on="address_id", how="left")


async def test_progress_matches_independent_computation(client: AsyncTestClient[Litestar], seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Campaign, target, list and canvasser figures, and by-day/by-hour buckets, equal pandas over the seeded rows."""
    response = await client.get(f"/api/campaigns/{seeded.campaign_id}/results/progress", headers=seeded.auth("lead"))
    assert response.status_code == 200, response.text
    body = response.json()
    async with sessionmaker() as session:
        f = await frames(session, seeded.campaign_id)
    att, stops, asg = f["attempts"], f["stops"], f["assignments"]
    knocked_pairs = set(zip(att["walk_list_id"].fillna(0).astype(int), att["address_id"], strict=True))
    all_stop_addresses = set(stops["address_id"])
    assert len(all_stop_addresses) == len(stops)  # the seeded lists share no doors
    remaining_all = sum((wl, a) not in knocked_pairs for wl, a in zip(stops["walk_list_id"], stops["address_id"], strict=True))
    assert figures_of(body["campaign"]) == expected_figures(att, len(stops), remaining_all)
    api_lists = {r["id"]: r for r in body["walk_lists"]}
    for wl, group in stops.groupby("walk_list_id"):
        remaining = sum((wl, a) not in knocked_pairs for a in group["address_id"])
        assert figures_of(api_lists[wl]) == expected_figures(att[att["walk_list_id"] == wl], len(group), remaining), wl
    no_list = att[att["walk_list_id"].isna()]
    assert figures_of(api_lists[None]) == expected_figures(no_list, 0, 0)
    api_targets = {r["id"]: r for r in body["targets"]}
    for target_id, group in stops.groupby("target_id"):
        remaining = sum((wl, a) not in knocked_pairs for wl, a in zip(group["walk_list_id"], group["address_id"], strict=True))
        assert figures_of(api_targets[target_id]) == expected_figures(att[att["target_id"] == target_id], len(group), remaining)
    api_canvassers = {r["id"]: r for r in body["canvassers"]}
    for user_id in set(att["user_id"].dropna().astype(int)) | set(asg["user_id"]):
        theirs = stops[stops["walk_list_id"].isin(asg.loc[asg["user_id"] == user_id, "walk_list_id"])]
        remaining = sum((wl, a) not in knocked_pairs for wl, a in zip(theirs["walk_list_id"], theirs["address_id"], strict=True))
        assert figures_of(api_canvassers[user_id]) == expected_figures(att[att["user_id"] == user_id], len(theirs), remaining), user_id
    local = att["at"].dt.tz_convert(TZ)
    by_day = att.assign(d=local.dt.date.astype(str)).groupby("d").agg(attempts=("outcome", "size"), contacts=("contact", "sum"))
    assert body["by_day"] == [{"bucket": d, "attempts": int(r.attempts), "contacts": int(r.contacts)} for d, r in by_day.iterrows()]
    by_hour = att.assign(h=local.dt.hour).groupby("h").agg(attempts=("outcome", "size"), contacts=("contact", "sum"))
    assert body["by_hour"] == [{"bucket": str(h), "attempts": int(r.attempts), "contacts": int(r.contacts)} for h, r in by_hour.iterrows()]
    assert "spoke or refused" in body["definitions"]["contacts"]


async def test_canvasser_reads_only_own_lists(client: AsyncTestClient[Litestar], seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A canvasser sees progress of lists assigned to them now, and nothing else of the results."""
    cid = seeded.campaign_id
    list_ids = list(seeded.lists)
    own = await client.get(f"/api/campaigns/{cid}/results/lists/{list_ids[0]}/progress", headers=seeded.auth("canvasser"))
    assert own.status_code == 200, own.text
    async with sessionmaker() as session:
        att = (await frames(session, cid))["attempts"]
    mine = att[att["walk_list_id"] == list_ids[0]]
    assert own.json()["walk_list"]["attempts"] == len(mine)
    days = mine.assign(d=mine["at"].dt.tz_convert(TZ).dt.date.astype(str)).groupby("d").agg(attempts=("outcome", "size"), contacts=("contact", "sum"))
    assert own.json()["by_day"] == [{"bucket": d, "attempts": int(r.attempts), "contacts": int(r.contacts)} for d, r in days.iterrows()]
    for wl in (list_ids[2], list_ids[5], list_ids[6], 999_999):  # someone else's, taken away, unassigned, missing
        denied = await client.get(f"/api/campaigns/{cid}/results/lists/{wl}/progress", headers=seeded.auth("canvasser"))
        assert denied.status_code == 403, (wl, denied.text)
    for path in ("results/progress", "results/answers", "results/map", "results/follow-ups", "exports/results.csv", "exports/report.pdf"):
        assert (await client.get(f"/api/campaigns/{cid}/{path}", headers=seeded.auth("canvasser"))).status_code == 403, path
    lead = await client.get(f"/api/campaigns/{cid}/results/lists/{list_ids[2]}/progress", headers=seeded.auth("lead"))
    assert lead.status_code == 200
    missing = await client.get(f"/api/campaigns/{cid}/results/lists/999999/progress", headers=seeded.auth("lead"))
    assert missing.status_code == 404


async def test_answers_by_area_list_target_and_suppression(client: AsyncTestClient[Litestar], seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Latest answers per respondent, counted by area/list/target, equal pandas; small cells are hidden; free text never appears."""
    cid = seeded.campaign_id
    async with sessionmaker() as session:
        f = await frames(session, cid)
    cur = current_answers(f["answers"], f["addresses"])
    cur = cur[cur["question_key"] != "notes"]

    def check(body: dict[str, Any], keyed: pd.DataFrame, key: str, threshold: int) -> int:
        api = {}
        for g in body["groups"]:
            for q in g["questions"]:
                assert q["key"] != "notes"
                for a in q["answers"]:
                    api[(g["code"], q["key"], a["value"])] = a["count"]
        expected = keyed.groupby([key, "question_key", "label"]).size()
        suppressed = 0
        assert len(api) == len(expected)
        for (k, q, v), n in expected.items():
            got = api[(str(k), q, v)]
            if n < threshold:
                assert got is None, (k, q, v, n)
                suppressed += 1
            else:
                assert got == n, (k, q, v)
        return suppressed

    area = await client.get(f"/api/campaigns/{cid}/results/answers", params={"by": "area"}, headers=seeded.auth("lead"))
    assert area.status_code == 200, area.text
    assert check(area.json(), cur.assign(area_code=cur["area_code"].fillna("")), "area_code", THRESHOLD) > 0
    lower = await client.get(f"/api/campaigns/{cid}/results/answers", params={"by": "area", "min_count": 1}, headers=seeded.auth("lead"))
    assert lower.json()["threshold"] == THRESHOLD  # never below the setting
    higher = await client.get(f"/api/campaigns/{cid}/results/answers", params={"by": "area", "min_count": 12}, headers=seeded.auth("lead"))
    assert higher.json()["threshold"] == 12
    check(higher.json(), cur.assign(area_code=cur["area_code"].fillna("")), "area_code", 12)
    by_list = await client.get(f"/api/campaigns/{cid}/results/answers", params={"by": "walk_list"}, headers=seeded.auth("lead"))
    check(by_list.json(), cur.assign(walk_list_id=cur["walk_list_id"].fillna(0).astype(int).astype(str).replace("0", "")), "walk_list_id", THRESHOLD)
    by_target = await client.get(f"/api/campaigns/{cid}/results/answers", params={"by": "target"}, headers=seeded.auth("lead"))
    parts = []
    for tid, poly in seeded.targets.items():
        inside = cur[shapely.contains_xy(poly, cur["lon"].to_numpy(), cur["lat"].to_numpy())]
        parts.append(inside.assign(target=str(tid)))
    check(by_target.json(), pd.concat(parts), "target", THRESHOLD)
    # A question total is hidden whenever one of its cells is (no recovering a cell by subtraction).
    for g in area.json()["groups"]:
        for q in g["questions"]:
            assert (q["respondents"] is None) == any(a["suppressed"] for a in q["answers"])
    # Wards: not loaded yet, said so; then two wards made of the output areas, mapped by containment.
    ward = await client.get(f"/api/campaigns/{cid}/results/answers", params={"by": "ward"}, headers=seeded.auth("lead"))
    assert ward.json()["groups"] == [] and "No ward" in ward.json()["note"]
    async with sessionmaker() as session:
        oas = (await session.execute(select(CensusArea.code, CensusArea.geometry).where(CensusArea.kind == "OA"))).all()
        polys = {c: shapely.from_wkb(g) for c, g in oas}
        midx = shapely.union_all(list(polys.values())).centroid.x
        west = [c for c, p in polys.items() if p.representative_point().x < midx]
        for code, members in (("W1", west), ("W2", [c for c in polys if c not in west])):
            geometry = shapely.union_all([polys[c] for c in members]).buffer(1e-9)
            area_row = CensusArea(campaign_id=cid, code=code, name=f"Ward {code}", kind="ward", geometry=shapely.to_wkb(geometry), counts={})
            session.add(area_row)
            await session.flush()
            session.add(CampaignArea(campaign_id=cid, area_id=area_row.id))
        await session.commit()
    ward_of = {c: "W1" for c in west} | {c: "W2" for c in polys if c not in west}
    ward = await client.get(f"/api/campaigns/{cid}/results/answers", params={"by": "ward"}, headers=seeded.auth("lead"))
    check(ward.json(), cur.assign(ward=cur["area_code"].map(ward_of)), "ward", THRESHOLD)
    # Issues by area: the same cells for top_local_issue.
    issues = await client.get(f"/api/campaigns/{cid}/results/issues", headers=seeded.auth("lead"))
    expected = cur[cur["question_key"] == "top_local_issue"]["label"].value_counts()
    assert {i["issue"]: i["count"] for i in issues.json()["totals"]} == {k: (int(v) if v >= THRESHOLD else None) for k, v in expected.items()}


async def test_map_layer(client: AsyncTestClient[Litestar], seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The choropleth layer: per area doors knocked, contact rate and support share equal pandas; small areas suppressed."""
    cid = seeded.campaign_id
    response = await client.get(f"/api/campaigns/{cid}/results/map", headers=seeded.auth("lead"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["support"] == "Red" and body["count"] == 30
    async with sessionmaker() as session:
        f = await frames(session, cid)
    att = f["attempts"].merge(f["addresses"], on="address_id")
    cur = current_answers(f["answers"], f["addresses"])
    vi = cur[cur["question_key"] == "voting_intention"]
    for feature in body["features"]:
        p = feature["properties"]
        here = att[att["area_code"] == p["code"]]
        knocked = here["address_id"].nunique()
        contacts = here.loc[here["contact"], "address_id"].nunique()
        if knocked < THRESHOLD:
            assert p["doors_knocked"] is None and p["contact_rate"] is None
        else:
            assert p["doors_knocked"] == knocked and p["contact_rate"] == round(contacts / knocked, 6)
        answers = vi[vi["area_code"] == p["code"]]
        if len(answers) < THRESHOLD:
            assert p["support_share"] is None
        else:
            assert p["support_share"] == round(float((answers["label"] == "Red").mean()), 6)
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")


async def test_follow_ups_consented_only_and_audited(client: AsyncTestClient[Litestar], seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Follow-ups list exactly the consenting people who asked; reads are audited; marking done hides them."""
    cid = seeded.campaign_id
    response = await client.get(f"/api/campaigns/{cid}/results/follow-ups", headers=seeded.auth("lead"))
    assert response.status_code == 200, response.text
    body = response.json()
    async with sessionmaker() as session:
        f = await frames(session, cid)
        consent = dict((await session.execute(select(Person.id, Person.contact_consent).where(Person.campaign_id == cid))).all())
    cur = current_answers(f["answers"], f["addresses"])
    cur = cur[cur["person_id"].notna()]
    wanted: dict[int, set[str]] = {}
    reasons = {"would_join": "join", "would_volunteer": "volunteer", "call_back": "call_back"}
    for r in cur.itertuples():
        if r.question_key in reasons and r.label == "Yes":
            wanted.setdefault(int(r.person_id), set()).add(reasons[r.question_key])
        if r.question_key == "leaflet_language" and r.label != "English":
            wanted.setdefault(int(r.person_id), set()).add("language")
    with_consent = {p: rs for p, rs in wanted.items() if consent.get(p)}
    assert {p["person_id"]: set(p["reasons"]) for p in body["people"]} == with_consent
    assert body["without_consent"] == len(wanted) - len(with_consent) > 0
    assert all(p["phone"] and p["contact_consent"] for p in body["people"])
    person = body["people"][0]
    for reason in person["reasons"]:
        done = await client.post(f"/api/campaigns/{cid}/results/follow-ups/{person['person_id']}/done", json={"reason": reason, "note": "rang"}, headers=seeded.auth("lead"))
        assert done.status_code == 200, done.text
    bad = await client.post(f"/api/campaigns/{cid}/results/follow-ups/{person['person_id']}/done", json={"reason": "ethnicity"}, headers=seeded.auth("lead"))
    assert bad.status_code == 422
    after = (await client.get(f"/api/campaigns/{cid}/results/follow-ups", headers=seeded.auth("lead"))).json()
    assert person["person_id"] not in {p["person_id"] for p in after["people"]}
    everyone = (await client.get(f"/api/campaigns/{cid}/results/follow-ups", params={"include_done": "true"}, headers=seeded.auth("lead"))).json()
    assert {p["person_id"]: p["done"] for p in everyone["people"]}[person["person_id"]] == sorted(person["reasons"])
    async with sessionmaker() as session:
        events = (await session.scalars(select(AuditEvent).where(AuditEvent.resource == "results/follow-ups", AuditEvent.action == "read").order_by(AuditEvent.id))).all()
    assert [e.row_count for e in events] == [body["count"], after["count"], everyone["count"]]
    assert all(e.user_id == seeded.users["lead"] for e in events)


async def test_data_health(client: AsyncTestClient[Litestar], seeded: Seeded) -> None:
    """Open conflicts and rejections are attributed to lists and canvassers; a device silent for 30 h is at risk."""
    cid = seeded.campaign_id
    list_ids = list(seeded.lists)
    body = (await client.get(f"/api/campaigns/{cid}/results/health", params={"stale_hours": 24}, headers=seeded.auth("organiser"))).json()
    assert body["open_conflicts"] == 2 and body["rejected_mutations"] == 2
    lists = {r["id"]: (r["open_conflicts"], r["rejected_mutations"]) for r in body["walk_lists"]}
    assert lists[list_ids[0]] == (1, 0) and lists[list_ids[3]] == (0, 1) and lists[None] == (0, 1)
    users = {r["id"]: (r["open_conflicts"], r["rejected_mutations"]) for r in body["canvassers"]}
    assert users[seeded.users["canvasser"]] == (1, 1) and users[seeded.users["canvasser2"]] == (1, 1)
    assert sorted(d["name"] for d in body["stale_devices"]) == ["phone 1", "phone 2"]
    relaxed = (await client.get(f"/api/campaigns/{cid}/results/health", params={"stale_hours": 48}, headers=seeded.auth("organiser"))).json()
    assert [d["name"] for d in relaxed["stale_devices"]] == ["phone 2"]


async def test_exports_audited_pdf_and_geopackage(client: AsyncTestClient[Litestar], seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Any) -> None:
    """CSV, GeoPackage, GeoJSON and PDF exports: right media types, readable, one page, each audited with its row count."""
    cid = seeded.campaign_id
    map_body = (await client.get(f"/api/campaigns/{cid}/results/map", headers=seeded.auth("lead"))).json()
    by_code = {f["properties"]["code"]: f["properties"] for f in map_body["features"]}
    csv = await client.get(f"/api/campaigns/{cid}/exports/results.csv", headers=seeded.auth("lead"))
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(csv.text), dtype={"code": str})
    assert len(table) == 30
    for row in table.itertuples():
        expected = by_code[row.code]["contact_rate"]
        assert (pd.isna(row.contact_rate) and expected is None) or row.contact_rate == pytest.approx(expected)
    gpkg = await client.get(f"/api/campaigns/{cid}/exports/results.gpkg", headers=seeded.auth("lead"))
    assert gpkg.status_code == 200 and gpkg.headers["content-type"].startswith("application/geopackage+sqlite3")
    assert "results-" in gpkg.headers["content-disposition"]
    path = tmp_path / "r.gpkg"
    path.write_bytes(gpkg.content)
    layer = gpd.read_file(path, layer="results_by_area")
    assert len(layer) == 30 and layer.crs.to_epsg() == 4326
    assert set(layer["code"]) == set(by_code)
    geojson = await client.get(f"/api/campaigns/{cid}/exports/results.geojson", headers=seeded.auth("lead"))
    assert geojson.status_code == 200 and len(json.loads(geojson.content)["features"]) == 30
    pdf = await client.get(f"/api/campaigns/{cid}/exports/report.pdf", headers=seeded.auth("lead"))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert 1 <= len(re.findall(rb"/Type\s*/Page(?!s)", pdf.content)) <= 3
    follow = await client.get(f"/api/campaigns/{cid}/exports/follow-ups.csv", headers=seeded.auth("lead"))
    assert follow.status_code == 200
    follow_rows = len(pd.read_csv(io.StringIO(follow.text)))
    denied = await client.get(f"/api/campaigns/{cid}/exports/results.csv", headers=seeded.auth("canvasser"))
    assert denied.status_code == 403
    async with sessionmaker() as session:
        events = (await session.execute(select(AuditEvent.resource, AuditEvent.row_count, AuditEvent.user_id).where(AuditEvent.action == "export").order_by(AuditEvent.id))).all()
    assert [tuple(e) for e in events] == [
        ("exports/results.csv", 30, seeded.users["lead"]),
        ("exports/results.gpkg", 30, seeded.users["lead"]),
        ("exports/results.geojson", 30, seeded.users["lead"]),
        ("exports/report.pdf", 30, seeded.users["lead"]),
        ("results/follow-ups", follow_rows, seeded.users["lead"]),
    ]


async def test_tallies_follow_every_write(seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Triggers (and on PostgreSQL the fold of queued attempts) keep the tallies equal to a full rebuild
    through inserts, corrections, updates and deletes, of attempts already folded and of attempts still queued."""
    cid = seeded.campaign_id

    async def snapshot(session: AsyncSession) -> dict[str, list[Any]]:
        out = {}
        for table in ("result_door_tally", "result_group_tally", "result_hour_tally", "result_answer_cells"):
            rows = (await session.execute(text(f"SELECT * FROM {table} WHERE campaign_id = :c"), {"c": cid})).all()
            out[table] = sorted(tuple(r) for r in rows)
        return out

    async with sessionmaker() as session:
        await fold_result_tallies(session)  # the seeded attempts are folded: the edits below take back folded rows
        await session.commit()
    async with sessionmaker() as session:
        answers = (await session.scalars(select(Answer).where(Answer.campaign_id == cid).order_by(Answer.id).limit(50))).all()
        # An older, late-arriving answer must not displace a newer one; a newer one must.
        session.add(Answer(id="late-old", campaign_id=cid, address_id=answers[0].address_id, person_id=answers[0].person_id, walk_list_id=answers[0].walk_list_id,
                           question_key=answers[0].question_key, value="Green", hlc=hlc(0)))
        session.add(Answer(id="late-new", campaign_id=cid, address_id=answers[1].address_id, person_id=answers[1].person_id, walk_list_id=answers[1].walk_list_id,
                           question_key=answers[1].question_key, value="Green", hlc=hlc(2 * 10**9)))
        await session.flush()
        await session.execute(delete(Answer).where(Answer.id.in_([a.id for a in answers[2:12]])))
        await session.execute(update(Answer).where(Answer.id == answers[20].id).values(value="Blue", hlc=hlc(3 * 10**9)))
        await session.execute(update(Answer).where(Answer.id == answers[21].id).values(person_id=None))
        attempt_ids = (await session.scalars(select(ContactAttempt.id).where(ContactAttempt.campaign_id == cid).order_by(ContactAttempt.id).limit(30))).all()
        await session.execute(delete(ContactAttempt).where(ContactAttempt.id.in_(attempt_ids[:10])))
        await session.execute(update(ContactAttempt).where(ContactAttempt.id.in_(attempt_ids[10:20])).values(outcome="spoke", walk_list_id=None))
        await session.execute(update(ContactAttempt).where(ContactAttempt.id == attempt_ids[25]).values(at=datetime(2026, 11, 1, 23, 30, tzinfo=UTC)))
        # new attempts (queued on PostgreSQL), some corrected or deleted before any fold
        template = (await session.scalars(select(ContactAttempt).where(ContactAttempt.id == attempt_ids[29]))).one()
        fresh = [f"fresh-{n}" for n in range(12)]
        for n, attempt_id in enumerate(fresh):
            session.add(ContactAttempt(id=attempt_id, campaign_id=cid, address_id=template.address_id if n % 2 else answers[n].address_id,
                                       walk_list_id=template.walk_list_id, user_id=template.user_id, outcome=OUTCOMES[n % len(OUTCOMES)],
                                       hlc=hlc(4 * 10**9 + n), at=datetime(2026, 11, 2, n, 5, tzinfo=UTC)))
        await session.flush()
        await session.execute(delete(ContactAttempt).where(ContactAttempt.id.in_(fresh[:3])))
        await session.execute(update(ContactAttempt).where(ContactAttempt.id.in_(fresh[3:6])).values(outcome="spoke", walk_list_id=None))
        await session.commit()
    async with sessionmaker() as session:
        if session.bind.dialect.name == "postgresql":
            queued = await session.scalar(text("SELECT count(*) FROM result_pending"))
            # 9 new attempts wait for a fold, and so do the 11 folded ones updated above (taken back, re-queued)
            assert queued == 9 + 11
        await fold_result_tallies(session)
        await session.commit()
    async with sessionmaker() as session:
        assert await session.scalar(text("SELECT count(*) FROM result_pending")) == 0
        live = await snapshot(session)
        counts = await rebuild_result_tallies(session, cid)
        rebuilt = await snapshot(session)
        await session.rollback()
    assert counts["result_door_tally"] > 0 and counts["result_answer_cells"] > 0
    assert live == rebuilt
