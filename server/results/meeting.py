"""The figures of the meeting report, gathered from the tallies (the PDF itself is drawn in `server.results.report`).

Everything here is by campaign, ward, target, canvasser or area, with the same
small-number suppression as the API: a count below the threshold is shown as
"<threshold" and a share is only shown when the count behind it is shown.
Targets are the sums over the walk lists cut from them (as in progress), so
their answers are those recorded on their lists.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

import geopandas as gpd
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Campaign, WalkList
from server.results import services
from server.results.schemas import GroupProgress, ProgressReport, QuestionBreakdown

EXCLUDED_FROM_KEY_QUESTIONS = {services.SUPPORT_QUESTION, services.ISSUE_QUESTION, services.LANGUAGE_QUESTION, "call_back"}
MAX_KEY_QUESTIONS = 4


@dataclass
class AreaRow:
    """One ward or target: doors knocked, contact rate, voting-intention respondents and the support share (None = suppressed)."""

    name: str
    knocked: int | None
    contact_rate: float | None
    respondents: int | None
    support_share: float | None


@dataclass
class MeetingReportData:
    """What the meeting report prints, already suppressed."""

    campaign_name: str
    threshold: int
    timezone: str
    period: tuple[date, date] | None
    progress: ProgressReport
    support: str
    voting_intention: QuestionBreakdown | None
    key_questions: list[QuestionBreakdown]
    wards: list[AreaRow]
    wards_note: str
    targets: list[AreaRow]
    canvassers: list[GroupProgress]
    signups: dict[str, int | None]
    issues: list[tuple[str, int | None]]
    area_frame: gpd.GeoDataFrame
    notes: list[str] = field(default_factory=list)


def _suppressed(n: int, threshold: int) -> int | None:
    return n if n >= threshold else None


def _area_row(name: str, knocked: int, contacted: int, answers: dict[str, int], support: str, threshold: int) -> AreaRow:
    respondents = sum(answers.values())
    supporters = answers.get(support, 0)
    shown = knocked >= threshold
    return AreaRow(
        name=name,
        knocked=knocked if shown else None,
        contact_rate=(contacted / knocked) if shown and knocked else None,
        respondents=_suppressed(respondents, threshold),
        support_share=(supporters / respondents) if respondents >= threshold and supporters >= threshold else None,
    )


async def meeting_report_data(session: AsyncSession, campaign_id: int, threshold: int, tz: str = "Europe/London") -> MeetingReportData:
    """Gather every figure of the meeting report from the tallies, suppressed like the API."""
    campaign = await session.get(Campaign, campaign_id)
    progress = await services.campaign_progress(session, campaign_id, tz)
    questions = await services.survey_questions(session, campaign_id)
    options = questions.get(services.SUPPORT_QUESTION, {}).get("options", [])
    support = options[0] if options else ""
    area_cells = await services.answer_cells(session, campaign_id, "area")
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_area_vi: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for area, q, v, n in area_cells:
        totals[q][v] += n
        if q == services.SUPPORT_QUESTION:
            by_area_vi[area or None][v] += n

    def breakdown(key: str) -> QuestionBreakdown:
        q = questions.get(key, {})
        return services.suppress_question(key, q.get("text", key), dict(totals[key]), q.get("options", []), threshold)

    vi = breakdown(services.SUPPORT_QUESTION) if totals.get(services.SUPPORT_QUESTION) else None
    key_questions = [
        breakdown(k) for k, q in questions.items()
        if k not in EXCLUDED_FROM_KEY_QUESTIONS and q["kind"] != "text" and totals.get(k)
    ][:MAX_KEY_QUESTIONS]

    # Wards: output areas' door counts and answers summed per ward (areas nest in wards).
    ward_of, ward_names = await services.ward_of_areas(session, campaign_id)
    doors = await services.area_door_counts(session, campaign_id)
    wards: list[AreaRow] = []
    wards_note = ""
    if ward_of:
        knocked: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        ward_vi: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for area, d in doors.items():
            if area in ward_of:
                knocked[ward_of[area]][0] += int(d["knocked"] or 0)
                knocked[ward_of[area]][1] += int(d["contacted"] or 0)
        for area, counts in by_area_vi.items():
            if area in ward_of:
                for v, n in counts.items():
                    ward_vi[ward_of[area]][v] += n
        wards = [_area_row(ward_names[w], knocked[w][0], knocked[w][1], ward_vi[w], support, threshold)
                 for w in sorted(ward_names, key=lambda w: ward_names[w])]
    else:
        wards_note = "No ward boundaries are loaded for this campaign; import wards (kind 'ward') to see results by ward."

    # Targets: sums over their walk lists, answers recorded on those lists.
    target_of = dict((await session.execute(
        select(WalkList.id, WalkList.target_id).where(WalkList.campaign_id == campaign_id, WalkList.target_id.is_not(None))
    )).all())
    target_vi: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for wl, q, v, n in await services.answer_cells(session, campaign_id, "walk_list", services.SUPPORT_QUESTION):
        if q == services.SUPPORT_QUESTION and wl in target_of:
            target_vi[target_of[wl]][v] += n
    targets = [_area_row(t.name, t.doors_knocked, t.contacts, target_vi[t.id] if t.id is not None else {}, support, threshold)
               for t in progress.targets]

    def yes(key: str) -> int:
        return sum(n for v, n in totals.get(key, {}).items() if v.strip().lower() in services.YES)

    signups = {
        f"Supporters ({support})" if support else "Supporters": _suppressed(totals.get(services.SUPPORT_QUESTION, {}).get(support, 0), threshold),
        "Would join": _suppressed(yes("would_join"), threshold),
        "Would volunteer": _suppressed(yes("would_volunteer"), threshold),
    }
    issues = await services.issues_report(session, campaign_id, threshold, cells=area_cells)
    frame, _ = await services.area_results_frame(session, campaign_id, threshold, support or None, cells=area_cells, door_counts=doors)
    days = [b.bucket for b in progress.by_day]
    period = (date.fromisoformat(min(days)), date.fromisoformat(max(days))) if days else None
    return MeetingReportData(
        campaign_name=campaign.name if campaign else f"Campaign {campaign_id}",
        threshold=threshold,
        timezone=tz,
        period=period,
        progress=progress,
        support=support,
        voting_intention=vi,
        key_questions=key_questions,
        wards=wards,
        wards_note=wards_note,
        targets=targets,
        canvassers=[c for c in progress.canvassers if c.attempts],
        signups=signups,
        issues=[(i.issue, i.count) for i in issues.totals][:8],
        area_frame=frame,
    )
