"""Results: progress, answers by area, map layers, follow-ups, issues and data health for campaign leads.

Definitions (shared by every figure here and by the exports):

- An *attempt* is one ContactAttempt row (a knock), whatever its outcome.
- *Doors knocked*: distinct addresses with at least one attempt.
- *Contact made*: someone answered the door, i.e. an attempt whose outcome is
  `spoke` or `refused`. *Contacts* counts distinct addresses with at least one
  such attempt; *contact rate* = contacts / doors knocked.
- *Doors remaining* of a walk list: its doors (stops) minus the doors knocked
  on that list (attempts recorded against it), never below zero. Targets,
  canvassers (lists assigned to them now) and the campaign sum their lists'
  doors and doors remaining; a target's other figures are also the sums over
  the walk lists cut from it (lists of one target do not share doors).
- A respondent's *answer* to a question is their latest Answer by HLC (answers
  are append-only; a correction is a new row). The respondent is the person
  when known, else the household (address).

Figures come from tallies kept by database triggers (migrations 0003 and 0005;
on PostgreSQL new attempts are queued and every reader folds the queue in
first, see `server.results.tallies`), so the dashboard reads thousands of rows,
not millions; `rebuild_result_tallies` recomputes them from the events.
Small counts are suppressed in every area breakdown (threshold from settings,
raisable per request, never lowered). Ethnicity appears nowhere: results are by
area, target, list and canvasser only.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry import mapping
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.security import AuthUser
from server.audit import record_audit
from server.db.dialect import is_postgres
from server.db.models import (
    Assignment,
    CampaignArea,
    CensusArea,
    FollowUp,
    Person,
    Role,
    Survey,
    Target,
    User,
    WalkList,
)
from server.errors import Forbidden, InvalidInput, NotFound
from server.results.schemas import (
    AnswerBreakdown,
    AnswerCount,
    AreaIssues,
    DataHealth,
    FollowUpDone,
    FollowUpList,
    FollowUpOut,
    FollowUpPerson,
    GroupAnswers,
    GroupProgress,
    HealthRow,
    IssueCount,
    IssuesReport,
    ListProgress,
    MapClasses,
    ProgressReport,
    QuestionBreakdown,
    ResultsFeatureCollection,
    StaleDevice,
    TimeBucket,
)
from server.results.tallies import (
    CONTACT_OUTCOMES,
    OUTCOMES,
    RESULT_TALLIES,
    SUM_COLUMNS,
    fold_result_tallies,
    hour_expression,
    rebuild_result_tallies,
)
from server.settings import Settings

__all__ = ["CONTACT_OUTCOMES", "OUTCOMES", "RESULT_TALLIES", "rebuild_result_tallies"]

DEFINITIONS = {
    "attempts": "every knock recorded (contact attempts), whatever the outcome",
    "doors_knocked": "distinct addresses with at least one attempt",
    "contacts": "distinct addresses where someone answered the door (an attempt with outcome spoke or refused)",
    "contact_rate": "contacts / doors_knocked",
    "doors_remaining": "per walk list: its doors minus the doors knocked on it (never below 0); targets, canvassers "
    "(lists assigned now) and the campaign: summed over their lists",
    "targets": "sums over the walk lists cut from the target",
    "by_day/by_hour": "attempts and contact attempts (spoke or refused) by local day and hour of day",
}
FOLLOW_UP_QUESTIONS = {"would_join": "join", "would_volunteer": "volunteer", "call_back": "call_back"}
LANGUAGE_QUESTION = "leaflet_language"
FOLLOW_UP_REASONS = ("join", "volunteer", "call_back", "language")
ISSUE_QUESTION = "top_local_issue"
SUPPORT_QUESTION = "voting_intention"
NO_CONSENT = frozenset({"", "no", "none", "withdrawn", "refused"})
YES = frozenset({"yes", "y", "true", "1"})
WARD_KINDS = ("ward", "WD", "WARD")
BREAKDOWNS = ("area", "ward", "target", "walk_list", "canvasser", "week")
# Two-level aggregation (per group and door, then per group): hash aggregates instead of the sorts
# that count(DISTINCT ...) needs, several times faster on PostgreSQL.
_PER_DOOR = "max(CASE WHEN t.contacts > 0 THEN 1 ELSE 0 END) AS contacted, " + ", ".join(f"sum(t.{c}) AS {c}" for c in SUM_COLUMNS)
_PER_GROUP = "count(*) AS knocked, sum(contacted) AS contacted, " + ", ".join(f"sum({c}) AS {c}" for c in SUM_COLUMNS)


# ------------------------------------------------------------------ small helpers


def effective_threshold(settings: Settings, requested: int | None) -> int:
    """The suppression threshold: the setting, or a higher one asked for; never lower than the setting."""
    return max(settings.small_count_threshold, requested or 0)


def resolve_timezone(name: str) -> ZoneInfo:
    """A zone by IANA name (local days and hours); 422 for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"Unknown time zone {name!r}.", errors=[{"field": "tz", "message": "unknown zone"}]) from exc


def answer_label(raw: Any) -> str:
    """A stored answer value (JSON text) as the label shown in results."""
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


def _progress(kind: str, key: int | None, name: str, tally: dict[str, int] | None, doors: tuple[int, int] | None) -> GroupProgress:
    tally = tally or {}
    knocked = int(tally.get("knocked") or 0)
    contacted = int(tally.get("contacted") or 0)
    on_lists, remaining = doors or (0, 0)
    return GroupProgress(
        kind=kind,
        id=key,
        name=name,
        doors_on_lists=int(on_lists),
        doors_knocked=knocked,
        contacts=contacted,
        contact_rate=_rate(contacted, knocked),
        attempts=int(tally.get("attempts") or 0),
        outcomes={o: int(tally.get(f"n_{o}") or 0) for o in (*OUTCOMES, "other")},
        doors_remaining=int(remaining),
    )


async def _rows(session: AsyncSession, sql: str, **params: Any) -> list[Any]:
    return list((await session.execute(text(sql), params)).mappings().all())


# ------------------------------------------------------------------ progress


async def _tallies_by(session: AsyncSession, campaign_id: int, group: str, walk_list_id: int | None = None) -> dict[Any, dict[str, int]]:
    """Progress aggregates per group key from the group tally: None (campaign), list, canvasser, or target (sum of its lists)."""
    columns = "g.knocked, g.contacted, " + ", ".join(f"g.{c}" for c in SUM_COLUMNS)
    if group == "target":
        rows = await _rows(
            session,
            "SELECT w.target_id AS k, sum(g.knocked) AS knocked, sum(g.contacted) AS contacted, "
            + ", ".join(f"sum(g.{c}) AS {c}" for c in SUM_COLUMNS)
            + " FROM result_group_tally g JOIN walk_lists w ON w.id = g.key "
            "WHERE g.campaign_id = :c AND g.kind = 'list' AND w.target_id IS NOT NULL GROUP BY w.target_id",
            c=campaign_id,
        )
        return {r["k"]: dict(r) for r in rows}
    kind = {"campaign": "campaign", "walk_list": "list", "canvasser": "user"}[group]
    extra = " AND g.key = :w" if walk_list_id is not None else ""
    rows = await _rows(session, f"SELECT g.key AS k, {columns} FROM result_group_tally g WHERE g.campaign_id = :c AND g.kind = :kind{extra}",
                       c=campaign_id, kind=kind, w=walk_list_id)
    if group == "campaign":
        return {None: dict(rows[0])} if rows else {}
    return {r["k"]: dict(r) for r in rows}


async def _list_stops(session: AsyncSession, campaign_id: int, walk_list_id: int | None = None) -> dict[int, int]:
    """Stops (doors) per walk list."""
    rows = await _rows(
        session,
        "SELECT s.walk_list_id AS k, count(*) AS n FROM walk_list_stops s JOIN walk_lists w ON w.id = s.walk_list_id WHERE w.campaign_id = :c"
        + (" AND s.walk_list_id = :w" if walk_list_id is not None else "")
        + " GROUP BY s.walk_list_id",
        c=campaign_id,
        w=walk_list_id,
    )
    return {int(r["k"]): int(r["n"]) for r in rows}


def _list_doors(stops: dict[int, int], tallies: dict[Any, dict[str, int]]) -> dict[int, tuple[int, int]]:
    """(doors on the list, doors remaining) per list: remaining = doors - doors knocked on the list, never below 0."""
    return {wl: (n, max(0, n - int((tallies.get(wl) or {}).get("knocked") or 0))) for wl, n in stops.items()}


def _sum_doors(lists: Iterable[int], doors: dict[int, tuple[int, int]]) -> tuple[int, int]:
    on_lists = remaining = 0
    for wl in lists:
        d, r = doors.get(wl, (0, 0))
        on_lists += d
        remaining += r
    return on_lists, remaining


async def _time_buckets(
    session: AsyncSession, campaign_id: int, zone: ZoneInfo, walk_list_id: int | None = None
) -> tuple[list[TimeBucket], list[TimeBucket]]:
    """Attempts and contact attempts by local day and local hour of day: the hourly tally, or one list's events."""
    if walk_list_id is None:
        sql = "SELECT hour, attempts, contacts FROM result_hour_tally WHERE campaign_id = :c"
    else:
        hour = hour_expression(is_postgres(session))
        sql = (
            f"SELECT {hour} AS hour, count(*) AS attempts, sum(CASE WHEN r.outcome IN ('spoke', 'refused') THEN 1 ELSE 0 END) AS contacts "
            f"FROM contact_attempts r WHERE r.campaign_id = :c AND r.walk_list_id = :w GROUP BY {hour}"
        )
    rows = await _rows(session, sql, c=campaign_id, w=walk_list_id)
    days: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    hours: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        local = datetime.fromtimestamp(int(r["hour"]) * 3600, UTC).astimezone(zone)
        for bucket in (days[local.date().isoformat()], hours[local.hour]):
            bucket[0] += int(r["attempts"] or 0)
            bucket[1] += int(r["contacts"] or 0)
    by_day = [TimeBucket(bucket=d, attempts=v[0], contacts=v[1]) for d, v in sorted(days.items())]
    by_hour = [TimeBucket(bucket=str(h), attempts=v[0], contacts=v[1]) for h, v in sorted(hours.items())]
    return by_day, by_hour


async def campaign_progress(session: AsyncSession, campaign_id: int, tz: str = "Europe/London") -> ProgressReport:
    """Progress of the whole campaign, by target, walk list and canvasser, and by local day and hour."""
    zone = resolve_timezone(tz)
    await fold_result_tallies(session)  # once per read, before any tally is read
    tallies = {g: await _tallies_by(session, campaign_id, g) for g in ("campaign", "target", "walk_list", "canvasser")}
    list_doors = _list_doors(await _list_stops(session, campaign_id), tallies["walk_list"])
    lists = {r.id: (r.name, r.target_id) for r in (await session.execute(
        select(WalkList.id, WalkList.name, WalkList.target_id).where(WalkList.campaign_id == campaign_id).order_by(WalkList.id)
    )).all()}
    assigned: dict[int, list[int]] = defaultdict(list)
    for wl, uid in (await session.execute(
        select(Assignment.walk_list_id, Assignment.user_id).join(WalkList, WalkList.id == Assignment.walk_list_id)
        .where(WalkList.campaign_id == campaign_id, Assignment.ended_at.is_(None))
    )).all():
        assigned[uid].append(wl)
    by_target: dict[int, list[int]] = defaultdict(list)
    for wl, (_name, target_id) in lists.items():
        if target_id is not None:
            by_target[target_id].append(wl)
    doors = {
        "campaign": {None: _sum_doors(list_doors, list_doors)},
        "walk_list": list_doors,
        "target": {t: _sum_doors(wls, list_doors) for t, wls in by_target.items()},
        "canvasser": {u: _sum_doors(wls, list_doors) for u, wls in assigned.items()},
    }
    targets = dict((await session.execute(select(Target.id, Target.name).where(Target.campaign_id == campaign_id).order_by(Target.id))).all())
    user_ids = {k for k in tallies["canvasser"] if k} | set(doors["canvasser"])
    users = dict((await session.execute(select(User.id, User.display_name).where(User.id.in_(user_ids)))).all()) if user_ids else {}
    list_keys = sorted(set(lists) | {k for k in tallies["walk_list"] if k})
    walk_lists = [_progress("walk_list", k, lists.get(k, (f"list {k}", None))[0], tallies["walk_list"].get(k), doors["walk_list"].get(k)) for k in list_keys]
    if 0 in tallies["walk_list"]:
        walk_lists.append(_progress("walk_list", None, "(no walk list)", tallies["walk_list"][0], None))
    target_keys = sorted(set(targets) | {k for k in tallies["target"] if k is not None})
    target_rows = [_progress("target", k, targets.get(k, f"target {k}"), tallies["target"].get(k), doors["target"].get(k)) for k in target_keys]
    canvassers = [
        _progress("canvasser", k, users.get(k, f"user {k}"), tallies["canvasser"].get(k), doors["canvasser"].get(k))
        for k in sorted(user_ids)
    ]
    if 0 in tallies["canvasser"]:
        canvassers.append(_progress("canvasser", None, "(unknown canvasser)", tallies["canvasser"][0], None))
    by_day, by_hour = await _time_buckets(session, campaign_id, zone)
    return ProgressReport(
        campaign_id=campaign_id,
        timezone=tz,
        definitions=DEFINITIONS,
        campaign=_progress("campaign", campaign_id, "campaign", tallies["campaign"].get(None), doors["campaign"].get(None)),
        targets=target_rows,
        walk_lists=walk_lists,
        canvassers=canvassers,
        by_day=by_day,
        by_hour=by_hour,
    )


async def check_list_access(session: AsyncSession, campaign_id: int, walk_list_id: int, user: AuthUser) -> WalkList:
    """The walk list, if the caller may read its progress: reviewers any list, a canvasser only a list assigned to them now."""
    walk_list = await session.get(WalkList, walk_list_id)
    role = user.role_in(campaign_id)
    if not user.is_superuser and role == Role.canvasser:
        assigned = await session.scalar(
            select(Assignment.id).where(
                Assignment.walk_list_id == walk_list_id, Assignment.user_id == user.id, Assignment.ended_at.is_(None)
            )
        )
        if walk_list is None or walk_list.campaign_id != campaign_id or assigned is None:
            raise Forbidden("Canvassers may only see progress of walk lists assigned to them.")
    if walk_list is None or walk_list.campaign_id != campaign_id:
        raise NotFound(f"No walk list {walk_list_id} in this campaign.")
    return walk_list


async def list_progress(session: AsyncSession, campaign_id: int, walk_list: WalkList, tz: str = "Europe/London") -> ListProgress:
    """Progress of one walk list, by local day and hour."""
    zone = resolve_timezone(tz)
    await fold_result_tallies(session)
    tally = (await _tallies_by(session, campaign_id, "walk_list", walk_list.id)).get(walk_list.id)
    doors = _list_doors(await _list_stops(session, campaign_id, walk_list.id), {walk_list.id: tally} if tally else {}).get(walk_list.id)
    by_day, by_hour = await _time_buckets(session, campaign_id, zone, walk_list.id)
    return ListProgress(
        campaign_id=campaign_id,
        timezone=tz,
        walk_list=_progress("walk_list", walk_list.id, walk_list.name, tally, doors),
        by_day=by_day,
        by_hour=by_hour,
    )


# ------------------------------------------------------------------ answers


async def survey_questions(session: AsyncSession, campaign_id: int) -> dict[str, dict[str, Any]]:
    """Question key -> question (text, kind, options) over the campaign's surveys, newest version last wins."""
    surveys = (await session.scalars(select(Survey).where(Survey.campaign_id == campaign_id, Survey.status != "draft").order_by(Survey.version, Survey.id))).all()
    questions: dict[str, dict[str, Any]] = {}
    for survey in surveys:
        for q in survey.questions or []:
            questions[str(q.get("key"))] = {"text": q.get("text", ""), "kind": q.get("kind", ""), "options": list(q.get("options") or [])}
    return questions


def _countable(key: str, questions: dict[str, dict[str, Any]]) -> bool:
    """Free-text answers are never aggregated (they are personal, not categories)."""
    question = questions.get(key)
    if question is None:
        return bool(questions) is False
    return question["kind"] != "text"


async def answer_cells(session: AsyncSession, campaign_id: int, group: str, question_key: str | None = None) -> list[Any]:
    """(group key, question, value label, respondents) from the answer tally; group is area_code or walk_list_id; one question or all."""
    column = {"area": "area_code", "walk_list": "walk_list_id"}[group]
    only = " AND question_key = :q" if question_key is not None else ""
    rows = (await session.execute(text(
        f"SELECT {column}, question_key, value, sum(n) FROM result_answer_cells WHERE campaign_id = :c{only} GROUP BY {column}, question_key, value"
    ), {"c": campaign_id, "q": question_key})).all()
    merged: dict[tuple[Any, str, str], int] = defaultdict(int)
    labels: dict[str, str] = {}
    for k, q, v, n in rows:
        label = labels.get(v)
        if label is None:
            label = labels[v] = answer_label(v)
        merged[(k, q, label)] += int(n or 0)
    return [(k, q, v, n) for (k, q, v), n in merged.items() if n > 0]


async def current_answers(session: AsyncSession, campaign_id: int, keys: Iterable[str] | None = None) -> pd.DataFrame:
    """Each respondent's latest answer per question (by HLC, then id), from the events (not the tally)."""
    collate = ' COLLATE "C"' if is_postgres(session) else ""
    key_list = list(keys) if keys is not None else None
    key_filter = ""
    params: dict[str, Any] = {"c": campaign_id}
    if key_list is not None:
        key_filter = " AND a.question_key IN (" + ", ".join(f":k{i}" for i in range(len(key_list))) + ")"
        params.update({f"k{i}": k for i, k in enumerate(key_list)})
        if not key_list:
            key_filter = " AND 1 = 0"
    rows = await _rows(
        session,
        "SELECT * FROM (SELECT a.id, a.person_id, a.address_id, a.walk_list_id, a.question_key, CAST(a.value AS TEXT) AS value, "
        "ad.area_code, ad.lon, ad.lat, a.user_id, a.hlc, row_number() OVER (PARTITION BY a.question_key, coalesce(a.person_id, 0), "
        "CASE WHEN a.person_id IS NULL THEN a.address_id ELSE 0 END "
        f"ORDER BY a.hlc{collate} DESC, a.id{collate} DESC) AS rn "
        f"FROM answers a LEFT JOIN addresses ad ON ad.id = a.address_id WHERE a.campaign_id = :c{key_filter}) x WHERE rn = 1",
        **params,
    )
    frame = pd.DataFrame(rows, columns=["id", "person_id", "address_id", "walk_list_id", "question_key", "value", "area_code", "lon", "lat",
                                        "user_id", "hlc", "rn"])
    frame["label"] = frame["value"].map(answer_label)
    return frame


def suppress_question(key: str, text_: str, counts: dict[str, int], options: list[str], threshold: int) -> QuestionBreakdown:
    """One question's answer counts with cells below the threshold hidden (and the total hidden if any cell is)."""
    ordered = [o for o in options if o in counts] + sorted(v for v in counts if v not in options)
    total = sum(counts.values())
    answers = []
    any_suppressed = False
    for value in ordered:
        n = counts[value]
        if n < threshold or total < threshold:
            any_suppressed = True
            answers.append(AnswerCount(value=value, count=None, suppressed=True))
        else:
            answers.append(AnswerCount(value=value, count=n))
    return QuestionBreakdown(key=key, text=text_, respondents=None if any_suppressed else total, answers=answers)


def _group_answers(
    cells: Iterable[tuple[Any, str, str, int]], names: dict[Any, str], questions: dict[str, dict[str, Any]], threshold: int
) -> list[GroupAnswers]:
    grouped: dict[Any, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for key, question, value, n in cells:
        if _countable(question, questions):
            grouped[key][question][value] += n
    order = list(questions)
    out = []
    for key in sorted(grouped, key=lambda k: (str(names.get(k, k)) if k is not None else "")):
        qs = grouped[key]
        breakdowns = [
            suppress_question(q, questions.get(q, {}).get("text", q), dict(qs[q]), questions.get(q, {}).get("options", []), threshold)
            for q in sorted(qs, key=lambda q: (order.index(q) if q in order else len(order), q))
        ]
        out.append(GroupAnswers(code=str(key if key is not None else ""), name=str(names.get(key, key if key is not None else "")), questions=breakdowns))
    return out


async def _area_names(session: AsyncSession, campaign_id: int) -> dict[str, str]:
    rows = (await session.execute(
        select(CensusArea.code, CensusArea.name).join(CampaignArea, CampaignArea.area_id == CensusArea.id).where(CampaignArea.campaign_id == campaign_id)
    )).all()
    return {code: name for code, name in rows}


async def ward_of_areas(session: AsyncSession, campaign_id: int) -> tuple[dict[str, str], dict[str, str]]:
    """(area code -> ward code, ward code -> name): by the area's parent code when it names a ward, else by containment.

    Containment uses each area's representative point inside the ward polygons
    (output areas nest in wards). Both maps are empty when no wards are loaded.
    """
    rows = (await session.execute(
        select(CensusArea.code, CensusArea.name, CensusArea.kind, CensusArea.geometry, CensusArea.parent_code)
        .join(CampaignArea, CampaignArea.area_id == CensusArea.id)
        .where(CampaignArea.campaign_id == campaign_id)
    )).all()
    wards = [r for r in rows if r.kind in WARD_KINDS]
    if not wards:
        return {}, {}
    ward_names = {w.code: w.name for w in wards}
    mapping_: dict[str, str] = {}
    with_geometry = [w for w in wards if w.geometry is not None]
    tree = shapely.STRtree(shapely.from_wkb([w.geometry for w in with_geometry])) if with_geometry else None
    for r in rows:
        if r.kind in WARD_KINDS:
            continue
        if r.parent_code in ward_names:
            mapping_[r.code] = r.parent_code
        elif tree is not None and r.geometry is not None:
            point = shapely.from_wkb(r.geometry).representative_point()
            hits = tree.query(point, predicate="within")
            if len(hits):
                mapping_[r.code] = with_geometry[int(hits[0])].code
    return mapping_, ward_names


def week_of(hlc_wall_ms: int, zone: ZoneInfo) -> tuple[str, str]:
    """(ISO week code 'YYYY-Www', 'Week of D Mon YYYY' from its Monday) of a moment in ms, in a local zone."""
    local = datetime.fromtimestamp(hlc_wall_ms / 1000, UTC).astimezone(zone).date()
    year, week, weekday = local.isocalendar()
    monday = local - timedelta(days=weekday - 1)
    return f"{year}-W{week:02d}", f"Week of {monday.day} {monday:%b %Y}"


async def _event_cells(session: AsyncSession, campaign_id: int, by: str, zone: ZoneInfo) -> tuple[list[Any], dict[Any, str]]:
    """Answer cells by the canvasser who recorded the answer, or the local ISO week of its HLC time (from the events)."""
    frame = await current_answers(session, campaign_id)
    if frame.empty:
        return [], {}
    if by == "canvasser":
        frame["group"] = pd.Series([None if pd.isna(u) else int(u) for u in frame["user_id"]], index=frame.index, dtype=object)
        ids = {u for u in frame["group"] if u is not None}
        names: dict[Any, str] = dict((await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))).all()) if ids else {}
        names[None] = "(unknown canvasser)"
    else:
        walls = frame["hlc"].astype(str).str.slice(0, 15)
        weeks = {w: week_of(int(w), zone) for w in set(walls) if w.isdigit()}
        frame["group"] = walls.map(lambda w: weeks[w][0] if w in weeks else None)
        names = {code: name for code, name in weeks.values()}
        names[None] = "(unknown week)"
    counts: dict[tuple[Any, str, str], int] = defaultdict(int)
    for k, q, v in zip(frame["group"], frame["question_key"], frame["label"], strict=True):
        counts[(k, q, v)] += 1
    return [(k, q, v, n) for (k, q, v), n in counts.items()], names


async def _group_contacts(session: AsyncSession, campaign_id: int, by: str, zone: ZoneInfo) -> tuple[int, dict[Any, int]]:
    """(campaign contacts, contacts per group key) from the tallies: the figures the reveal estimate may use."""
    await fold_result_tallies(session)
    tallies = {g: await _tallies_by(session, campaign_id, g) for g in ("campaign", "walk_list", "canvasser", "target")}
    campaign = int((tallies["campaign"].get(None) or {}).get("contacted") or 0)
    if by in ("walk_list", "canvasser", "target"):
        return campaign, {(k or None): int(v.get("contacted") or 0) for k, v in tallies[by].items()}
    if by == "week":
        out: dict[Any, int] = defaultdict(int)
        for r in await _rows(session, "SELECT hour, contacts FROM result_hour_tally WHERE campaign_id = :c", c=campaign_id):
            out[week_of(int(r["hour"]) * 3600 * 1000, zone)[0]] += int(r["contacts"] or 0)
        return campaign, dict(out)
    per_area = {k: int(v.get("contacted") or 0) for k, v in (await area_door_counts(session, campaign_id)).items()}
    if by == "ward":
        ward_of, _ = await ward_of_areas(session, campaign_id)
        wards: dict[Any, int] = defaultdict(int)
        for area, n in per_area.items():
            wards[ward_of.get(area or "")] += n
        return campaign, dict(wards)
    return campaign, {(k or None): n for k, n in per_area.items()}


def _add_reveal_estimates(groups: list[GroupAnswers], keys: dict[str, Any], campaign_contacts: int, contacts: dict[Any, int],
                          totals: dict[tuple[str, str], int], threshold: int) -> None:
    """Give each hidden cell `more_contacts`: about how many more contacts in its group would typically show it.

    Built only from figures shown anyway -- the campaign's contacts, the campaign-wide count of
    that answer (taken as threshold - 1 when that is itself hidden) and the group's contacts
    (0 when below the threshold) -- so it never gives a hidden count away.
    """
    for group in groups:
        shown = contacts.get(keys.get(group.code), 0)
        shown = shown if shown >= threshold else 0
        for question in group.questions:
            for answer in question.answers:
                if not answer.suppressed:
                    continue
                count = totals.get((question.key, answer.value), 0)
                count = count if count >= threshold else threshold - 1
                needed = -(-threshold * max(campaign_contacts, 1) // max(count, 1))
                answer.more_contacts = max(1, needed - shown)


REVEAL_NOTE = ("A hidden cell (fewer than {t} respondents) carries more_contacts: about how many more contacts (doors answered) in that "
               "group would typically show it, at the campaign-wide rate of that answer. It is built from shown figures only.")


async def answers_breakdown(session: AsyncSession, campaign_id: int, by: str, threshold: int, tz: str = "Europe/London") -> AnswerBreakdown:
    """Respondents' current answers per question by area, ward, target, walk list, canvasser or week, with small cells suppressed."""
    if by not in BREAKDOWNS:
        raise InvalidInput(f"by must be one of {', '.join(BREAKDOWNS)}.", errors=[{"field": "by", "message": "unknown breakdown"}])
    zone = resolve_timezone(tz)
    result = await _answers_breakdown(session, campaign_id, by, threshold, zone)
    if any(a.suppressed for g in result.groups for q in g.questions for a in q.answers):
        totals: dict[tuple[str, str], int] = defaultdict(int)
        for _k, q, v, n in await answer_cells(session, campaign_id, "area"):
            totals[(q, v)] += n
        campaign_contacts, contacts = await _group_contacts(session, campaign_id, by, zone)
        keys = {str(k if k is not None else ""): k for k in contacts}
        _add_reveal_estimates(result.groups, keys, campaign_contacts, contacts, totals, threshold)
        result.note = " ".join(x for x in (result.note, REVEAL_NOTE.format(t=threshold)) if x)
    return result


async def _answers_breakdown(session: AsyncSession, campaign_id: int, by: str, threshold: int, zone: ZoneInfo) -> AnswerBreakdown:
    questions = await survey_questions(session, campaign_id)
    note = ""
    if by in ("canvasser", "week"):
        cells, names = await _event_cells(session, campaign_id, by, zone)
    elif by == "area":
        cells = await answer_cells(session, campaign_id, "area")
        names = await _area_names(session, campaign_id)
        cells = [((k or None), q, v, n) for k, q, v, n in cells]
        names[None] = "(no area)"  # type: ignore[index]
    elif by == "walk_list":
        cells = [((k or None), q, v, n) for k, q, v, n in await answer_cells(session, campaign_id, "walk_list")]
        names = {r.id: r.name for r in (await session.execute(select(WalkList.id, WalkList.name).where(WalkList.campaign_id == campaign_id))).all()}
        names[None] = "(no walk list)"  # type: ignore[index]
    elif by == "ward":
        ward_of, names = await ward_of_areas(session, campaign_id)
        if not ward_of:
            return AnswerBreakdown(campaign_id=campaign_id, by=by, threshold=threshold, groups=[],
                                   note="No ward boundaries are loaded for this campaign; import wards (kind 'ward') to see this breakdown.")
        cells = [(ward_of.get(k or "", None), q, v, n) for k, q, v, n in await answer_cells(session, campaign_id, "area")]
        names[None] = "(outside any ward)"  # type: ignore[index]
    else:
        frame = await current_answers(session, campaign_id)
        targets = (await session.execute(select(Target.id, Target.name, Target.geometry).where(Target.campaign_id == campaign_id, Target.geometry.is_not(None)))).all()
        names = {t.id: t.name for t in targets}
        cells = []
        if not frame.empty and targets:
            points = shapely.points(frame["lon"].astype(float).fillna(0), frame["lat"].astype(float).fillna(0))
            for target in targets:
                polygon = shapely.from_wkb(target.geometry)
                inside = frame[shapely.contains_xy(polygon, shapely.get_x(points), shapely.get_y(points)) & frame["lon"].notna()]
                for (q, v), n in inside.groupby(["question_key", "label"]).size().items():
                    cells.append((target.id, q, v, int(n)))
        note = "A target holds the answers of respondents whose address lies inside its polygon (targets may overlap)."
    groups = _group_answers(cells, names, questions, threshold)
    if by == "week":  # in time order (the codes sort so), not by name
        groups.sort(key=lambda g: (g.code == "", g.code))
    return AnswerBreakdown(campaign_id=campaign_id, by=by, threshold=threshold, groups=groups, note=note)


async def issues_report(session: AsyncSession, campaign_id: int, threshold: int, cells: list[Any] | None = None) -> IssuesReport:
    """Top local issue named by respondents, counted by area and overall, small counts suppressed."""
    questions = await survey_questions(session, campaign_id)
    names = await _area_names(session, campaign_id)
    options = questions.get(ISSUE_QUESTION, {}).get("options", [])
    per_area: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, int] = defaultdict(int)
    for k, q, v, n in cells if cells is not None else await answer_cells(session, campaign_id, "area"):
        if q == ISSUE_QUESTION:
            per_area[k or ""][v] += n
            totals[v] += n

    def counted(counts: dict[str, int]) -> list[IssueCount]:
        ordered = sorted(counts, key=lambda v: (-counts[v], options.index(v) if v in options else len(options), v))
        return [IssueCount(issue=v, count=None, suppressed=True) if counts[v] < threshold else IssueCount(issue=v, count=counts[v]) for v in ordered]

    return IssuesReport(
        campaign_id=campaign_id,
        question=ISSUE_QUESTION,
        threshold=threshold,
        totals=counted(totals),
        areas=[AreaIssues(code=k, name=names.get(k, "(no area)"), issues=counted(per_area[k])) for k in sorted(per_area)],
    )


# ------------------------------------------------------------------ areas (map, exports)


AREA_RESULT_COLUMNS = ["doors", "doors_knocked", "contacts", "contact_rate", "respondents", "support_share", "suppressed"]


async def area_door_counts(session: AsyncSession, campaign_id: int) -> dict[str | None, dict[str, int]]:
    """Doors knocked, contacted and knocks per output area code, from the door tally (unsuppressed: callers suppress)."""
    return {r["k"]: dict(r) for r in await _rows(
        session,
        # per door, then per area: hash aggregates rather than the sorts count(DISTINCT ...) needs (as _PER_DOOR)
        "SELECT k, count(*) AS knocked, sum(c) AS contacted, sum(a) AS attempts FROM ("
        "SELECT ad.area_code AS k, t.address_id, max(CASE WHEN t.contacts > 0 THEN 1 ELSE 0 END) AS c, sum(t.attempts) AS a "
        "FROM result_door_tally t JOIN addresses ad ON ad.id = t.address_id WHERE t.campaign_id = :c GROUP BY ad.area_code, t.address_id) x "
        "GROUP BY k",
        c=campaign_id,
    )}


async def area_results_frame(
    session: AsyncSession, campaign_id: int, threshold: int, support: str | None = None,
    cells: list[Any] | None = None, door_counts: dict[str | None, dict[str, int]] | None = None,
) -> tuple[gpd.GeoDataFrame, str]:
    """One row per campaign output area: doors, knocked, contacts, contact rate, respondents, support share (suppressed).

    `cells` (answer cells by area) and `door_counts` (area_door_counts) may be passed by a caller that already read them.
    """
    from server.geography.services import campaign_area_polygons

    await fold_result_tallies(session)

    areas = await campaign_area_polygons(session, campaign_id, kind="OA")
    if areas.empty:
        areas = await campaign_area_polygons(session, campaign_id, kind=None)
        areas = areas[~areas["kind"].isin(WARD_KINDS)]
    questions = await survey_questions(session, campaign_id)
    options = questions.get(SUPPORT_QUESTION, {}).get("options", [])
    support = support or (options[0] if options else "")
    doors = {r["k"]: int(r["n"]) for r in await _rows(
        session, "SELECT area_code AS k, count(*) AS n FROM addresses WHERE campaign_id = :c GROUP BY area_code", c=campaign_id)}
    tally = door_counts if door_counts is not None else await area_door_counts(session, campaign_id)
    respondents: dict[str, int] = defaultdict(int)
    supporters: dict[str, int] = defaultdict(int)
    for k, q, v, n in cells if cells is not None else await answer_cells(session, campaign_id, "area"):
        if q == SUPPORT_QUESTION:
            respondents[k] += n
            if v == support:
                supporters[k] += n
    records = []
    for code in areas["code"]:
        t = tally.get(code) or {}
        knocked, contacted = int(t.get("knocked") or 0), int(t.get("contacted") or 0)
        small = knocked < threshold
        n_resp = respondents.get(code, 0)
        records.append({
            "doors": doors.get(code, 0),
            "doors_knocked": None if small else knocked,
            "contacts": None if small or contacted < threshold else contacted,
            "contact_rate": None if small else _rate(contacted, knocked),
            "respondents": None if n_resp < threshold else n_resp,
            "support_share": None if n_resp < threshold else _rate(supporters.get(code, 0), n_resp),
            "suppressed": small or n_resp < threshold,
        })
    # An empty campaign still has the columns (exports and the report read them by name).
    extra = pd.DataFrame(records, index=areas.index, columns=AREA_RESULT_COLUMNS)
    frame = gpd.GeoDataFrame(pd.concat([areas[["code", "name"]], extra], axis=1), geometry=areas.geometry, crs="EPSG:4326")
    return frame, support


MAX_MAP_CLASSES = 5
# metric -> (the count behind the figure, colour scheme, midpoint)
MAP_METRICS = {"contact_rate": ("doors_knocked", "sequential", None), "support_share": ("respondents", "diverging", 0.5),
               "doors_knocked": ("doors_knocked", "sequential", None)}


def map_classes(values: Iterable[float | None], scheme: str, midpoint: float | None = None, k: int = MAX_MAP_CLASSES) -> MapClasses:
    """Quantile classes over the values' real range (not 0..1), at most k; a diverging scheme also breaks at its midpoint.

    Quantiles give each class about the same number of areas, so small differences in a
    narrow range are not stretched into opposite extremes of an equal-interval scale.
    """
    present = sorted(float(v) for v in values if v is not None and not pd.isna(v))
    if not present:
        return MapClasses(method="quantile", scheme=scheme, midpoint=midpoint, breaks=[])
    lo, hi = present[0], present[-1]
    if lo == hi:
        return MapClasses(method="quantile", scheme=scheme, midpoint=midpoint, breaks=[lo, hi])
    import numpy as np

    cuts = {round(float(x), 6) for x in np.quantile(present, [i / k for i in range(1, k)])}
    if midpoint is not None and lo < midpoint < hi:
        cuts.add(midpoint)
    breaks = [lo, *sorted(c for c in cuts if lo < c < hi), hi]
    return MapClasses(method="quantile", scheme=scheme, midpoint=midpoint, breaks=breaks)


async def results_map(session: AsyncSession, campaign_id: int, threshold: int, support: str | None) -> ResultsFeatureCollection:
    """GeoJSON of areas with contact rate and support share, their classes for a choropleth and the count behind each figure."""
    frame, support_value = await area_results_frame(session, campaign_id, threshold, support)
    classes = {m: map_classes(frame[m], scheme, midpoint) for m, (_count, scheme, midpoint) in MAP_METRICS.items()}
    features = []
    for _, row in frame.iterrows():
        properties = _plain({c: (None if pd.isna(row[c]) else row[c]) for c in frame.columns if c != "geometry"})
        for metric, (count, _scheme, _mid) in MAP_METRICS.items():
            properties[f"{metric}_class"] = classes[metric].class_of(properties[metric])
            properties[f"{metric}_count"] = properties[count]
        features.append({"type": "Feature", "geometry": mapping(row.geometry) if row.geometry is not None else None, "properties": properties})
    return ResultsFeatureCollection(type="FeatureCollection", features=features, support=support_value, threshold=threshold, count=len(features),
                                    classes=classes)


def _plain(properties: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in properties.items():
        if hasattr(v, "item"):
            v = v.item()
        out[k] = v
    return out


# ------------------------------------------------------------------ follow-ups


def _consented(consent: str | None) -> bool:
    return consent is not None and consent.strip().lower() not in NO_CONSENT


async def follow_up_list(
    session: AsyncSession, campaign_id: int, user: AuthUser, *, reason: str | None = None, include_done: bool = False, audit: str = "read",
    layout: str | None = None,
) -> FollowUpList:
    """People who asked to join, volunteer, be called back or for another leaflet language; consented contact only; audited."""
    if reason is not None and reason not in FOLLOW_UP_REASONS:
        raise InvalidInput(f"reason must be one of {', '.join(FOLLOW_UP_REASONS)}.", errors=[{"field": "reason", "message": "unknown"}])
    frame = await current_answers(session, campaign_id, [*FOLLOW_UP_QUESTIONS, LANGUAGE_QUESTION])
    frame = frame[frame["person_id"].notna()]
    wants: dict[int, dict[str, Any]] = defaultdict(lambda: {"reasons": set(), "language": None})
    for row in frame.itertuples():
        pid = int(row.person_id)
        if row.question_key in FOLLOW_UP_QUESTIONS and str(row.label).strip().lower() in YES:
            wants[pid]["reasons"].add(FOLLOW_UP_QUESTIONS[row.question_key])
        elif row.question_key == LANGUAGE_QUESTION and str(row.label).strip().lower() not in ("", "english", "none"):
            wants[pid]["reasons"].add("language")
            wants[pid]["language"] = str(row.label)
    wants = {p: w for p, w in wants.items() if w["reasons"] and (reason is None or reason in w["reasons"])}
    people: list[FollowUpPerson] = []
    without_consent = 0
    if wants:
        ids = sorted(wants)
        done: dict[int, set[str]] = defaultdict(set)
        found: list[Any] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for f in (await session.execute(select(FollowUp.person_id, FollowUp.reason).where(FollowUp.campaign_id == campaign_id, FollowUp.person_id.in_(chunk)))).all():
                done[f.person_id].add(f.reason)
            found += (await session.execute(
                text("SELECT p.id, p.forenames, p.surname, p.phone, p.email, p.contact_consent, ad.lines, ad.postcode, ad.area_code "
                     "FROM people p LEFT JOIN addresses ad ON ad.id = p.address_id WHERE p.campaign_id = :c AND p.id IN ("
                     + ", ".join(str(int(i)) for i in chunk) + ")"),
                {"c": campaign_id},
            )).mappings().all()
        for p in sorted(found, key=lambda r: (r["postcode"] or "", r["surname"], r["forenames"], r["id"])):
            if not _consented(p["contact_consent"]):
                without_consent += 1
                continue
            reasons = sorted(wants[p["id"]]["reasons"])
            pending = [r for r in reasons if r not in done[p["id"]]]
            if not include_done and not pending:
                continue
            lines = p["lines"]
            if isinstance(lines, str):
                lines = json.loads(lines)
            people.append(FollowUpPerson(
                person_id=p["id"], name=f"{p['forenames']} {p['surname']}".strip(), address=", ".join(lines or []),
                postcode=p["postcode"] or "", area_code=p["area_code"], phone=p["phone"], email=p["email"],
                contact_consent=p["contact_consent"], reasons=reasons, language=wants[p["id"]]["language"],
                done=sorted(done[p["id"]] & set(reasons)), first_name=p["forenames"] or "", last_name=p["surname"] or "",
                address_lines=list(lines or []),
            ))
    record_audit(session, user, audit, "results/follow-ups", campaign_id=campaign_id, row_count=len(people),
                 detail={"reason": reason, "include_done": include_done, **({"layout": layout} if layout else {})})
    return FollowUpList(campaign_id=campaign_id, count=len(people), without_consent=without_consent, people=people)


async def mark_follow_up_done(session: AsyncSession, campaign_id: int, person_id: int, data: FollowUpDone, user: AuthUser) -> FollowUpOut:
    """Record that one reason of a person's follow-up was done (idempotent: a repeat updates the note)."""
    if data.reason not in FOLLOW_UP_REASONS:
        raise InvalidInput(f"reason must be one of {', '.join(FOLLOW_UP_REASONS)}.", errors=[{"field": "reason", "message": "unknown"}])
    person = await session.get(Person, person_id)
    if person is None or person.campaign_id != campaign_id:
        raise NotFound(f"No person {person_id} in this campaign.")
    row = await session.scalar(select(FollowUp).where(FollowUp.person_id == person_id, FollowUp.reason == data.reason))
    if row is None:
        row = FollowUp(campaign_id=campaign_id, person_id=person_id, reason=data.reason, done_by=user.id, note=data.note, done_at=datetime.now(UTC))
        session.add(row)
    else:
        row.note, row.done_by, row.done_at = data.note, user.id, datetime.now(UTC)
    await session.flush()
    record_audit(session, user, "update", "results/follow-ups", campaign_id=campaign_id, row_count=1, detail={"person_id": person_id, "reason": data.reason})
    return FollowUpOut(person_id=person_id, reason=row.reason, done_at=row.done_at, done_by=row.done_by, note=row.note)


# ------------------------------------------------------------------ data health


def _as_utc(value: Any) -> datetime | None:
    """A stored timestamp (SQLite returns text from raw SQL) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def device_syncs(session: AsyncSession, campaign_id: int, stale_hours: float, now: datetime) -> list[StaleDevice]:
    """Each active device of the campaign with its last sync, from the sync records, and whether it is stale.

    The last sync is the latest of: the push stamp (``devices.last_sync_at``, set with the
    receipt), the receipt's own time (``device_receipts.updated_at``), and the last request
    the device's token authenticated (``devices.last_seen_at``, kept to the minute) -- the
    only trace a pull leaves, so a phone that only pulls is not reported as never synced.
    """
    rows = await _rows(
        session,
        "SELECT d.id, d.name, d.user_id, u.display_name, d.last_sync_at, d.last_seen_at, r.updated_at AS receipt_at "
        "FROM devices d JOIN users u ON u.id = d.user_id LEFT JOIN device_receipts r ON r.device_id = d.id "
        "WHERE d.campaign_id = :c AND d.revoked_at IS NULL ORDER BY d.id",
        c=campaign_id,
    )
    cutoff = now - timedelta(hours=stale_hours)
    out = []
    for r in rows:
        moments = [m for m in (_as_utc(r["last_sync_at"]), _as_utc(r["last_seen_at"]), _as_utc(r["receipt_at"])) if m is not None]
        last = max(moments) if moments else None
        out.append(StaleDevice(
            device_id=r["id"], name=r["name"], user_id=r["user_id"], user_name=r["display_name"], last_sync_at=last,
            hours_since_sync=None if last is None else round(max(0.0, (now - last).total_seconds()) / 3600, 2),
            stale=last is None or last < cutoff, never_synced=last is None,
        ))
    return out


async def data_health(session: AsyncSession, campaign_id: int, stale_hours: float, now: datetime | None = None) -> DataHealth:
    """Open conflicts and rejected mutations per walk list and canvasser; devices not synced within `stale_hours`."""
    if stale_hours <= 0:
        raise InvalidInput("stale_hours must be positive.", errors=[{"field": "stale_hours", "message": "must be > 0"}])
    now = now or datetime.now(UTC)
    address_of_entity = (
        "CASE WHEN {e}.entity = 'address' THEN {e}.entity_id "
        "WHEN {e}.entity = 'person' THEN (SELECT p.address_id FROM people p WHERE p.id = {e}.entity_id) END"
    )
    conflicts = await _rows(
        session,
        "SELECT x.id, d.user_id, " + address_of_entity.format(e="x") + " AS address_id FROM conflicts x "
        "LEFT JOIN devices d ON d.id = x.losing_device_id WHERE x.campaign_id = :c AND x.resolved_at IS NULL",
        c=campaign_id,
    )
    rejected = await _rows(
        session,
        "SELECT coalesce(m.user_id, d.user_id) AS user_id, m.entity, m.entity_id FROM mutation_results m "
        "LEFT JOIN devices d ON d.id = m.device_id WHERE m.campaign_id = :c AND m.status = 'rejected'",
        c=campaign_id,
    )
    person_address = {}
    person_ids = {int(r["entity_id"]) for r in rejected if r["entity"] == "person" and str(r["entity_id"] or "").isdigit()}
    if person_ids:
        person_address = dict((await session.execute(select(Person.id, Person.address_id).where(Person.id.in_(person_ids)))).all())
    stops = await _rows(
        session,
        "SELECT s.address_id, s.walk_list_id FROM walk_list_stops s JOIN walk_lists w ON w.id = s.walk_list_id WHERE w.campaign_id = :c",
        c=campaign_id,
    )
    lists_of: dict[int, list[int]] = defaultdict(list)
    for s in stops:
        lists_of[int(s["address_id"])].append(int(s["walk_list_id"]))
    by_list: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    by_user: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    for c in conflicts:
        address_id = int(c["address_id"]) if c["address_id"] is not None else None
        for wl in lists_of.get(address_id, [None]) if address_id is not None else [None]:  # type: ignore[list-item]
            by_list[wl][0] += 1
        by_user[c["user_id"]][0] += 1
    for r in rejected:
        entity_id = str(r["entity_id"] or "")
        address_id = None
        if r["entity"] == "address" and entity_id.isdigit():
            address_id = int(entity_id)
        elif r["entity"] == "person" and entity_id.isdigit():
            address_id = person_address.get(int(entity_id))
        for wl in lists_of.get(address_id, [None]) if address_id is not None else [None]:  # type: ignore[list-item]
            by_list[wl][1] += 1
        by_user[r["user_id"]][1] += 1
    list_names = dict((await session.execute(select(WalkList.id, WalkList.name).where(WalkList.campaign_id == campaign_id))).all())
    user_ids = {u for u in by_user if u is not None}
    devices = await device_syncs(session, campaign_id, stale_hours, now)
    stale = [d for d in devices if d.stale]
    users = dict((await session.execute(select(User.id, User.display_name).where(User.id.in_(user_ids)))).all()) if user_ids else {}
    return DataHealth(
        campaign_id=campaign_id,
        stale_after_hours=stale_hours,
        open_conflicts=len(conflicts),
        rejected_mutations=len(rejected),
        walk_lists=[HealthRow(kind="walk_list", id=k, name=list_names.get(k, "(no walk list)") if k is not None else "(no walk list)", open_conflicts=v[0], rejected_mutations=v[1])
                    for k, v in sorted(by_list.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))],
        canvassers=[HealthRow(kind="canvasser", id=k, name=users.get(k, "(unknown)") if k is not None else "(unknown)", open_conflicts=v[0], rejected_mutations=v[1])
                    for k, v in sorted(by_user.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))],
        stale_devices=stale,
        devices=devices,
    )
