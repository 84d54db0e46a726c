"""Results endpoints for campaign leads (progress, answers, map, follow-ups, issues, data health) and exports.

Reviewers (admin, organiser, lead; superusers) read everything; a canvasser may
read the progress of walk lists assigned to them now, nothing else. Exports are
reviewers only and each is audited with its row count.
"""

from __future__ import annotations

import asyncio
import math
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from server.accounts.guards import MEMBERS, REVIEWERS, require_role
from server.audit import record_audit
from server.dependencies import AppSettings, CurrentUser, DbSession
from server.errors import DomainError
from server.results import services
from server.results.live import live_field
from server.results.meeting import meeting_report_data
from server.results.report import (
    area_frame_to_csv,
    area_frame_to_file,
    check_follow_up_layout,
    follow_ups_to_csv,
    meeting_report_pdf,
)
from server.results.schemas import (
    AnswerBreakdown,
    DataHealth,
    FollowUpDone,
    FollowUpList,
    FollowUpOut,
    IssuesReport,
    ListProgress,
    LiveField,
    ProgressReport,
    ResultsFeatureCollection,
)

MAX_STALE_HOURS = 24 * 366 * 10  # ten years: any device older than that is stale whatever the threshold


class ResultsController(Controller):
    """What the canvassing achieved, by area, list and canvasser."""

    path = "/api/campaigns/{campaign_id:int}/results"
    tags = ["results"]

    @get("/progress", guards=[require_role(*REVIEWERS)])
    async def progress(self, campaign_id: FromPath[int], db_session: DbSession, tz: FromQuery[str] = "Europe/London") -> ProgressReport:
        """Doors knocked, contacts, contact rate, outcomes and doors remaining by campaign, target, list, canvasser, day and hour."""
        return await services.campaign_progress(db_session, campaign_id, tz)

    @get("/lists/{walk_list_id:int}/progress", guards=[require_role(*MEMBERS)])
    async def list_progress(
        self, campaign_id: FromPath[int], walk_list_id: FromPath[int], db_session: DbSession, user: CurrentUser,
        tz: FromQuery[str] = "Europe/London",
    ) -> ListProgress:
        """Progress of one walk list; canvassers only for lists assigned to them."""
        walk_list = await services.check_list_access(db_session, campaign_id, walk_list_id, user)
        return await services.list_progress(db_session, campaign_id, walk_list, tz)

    @get("/answers", guards=[require_role(*REVIEWERS)])
    async def answers(
        self, campaign_id: FromPath[int], db_session: DbSession, settings: AppSettings,
        by: FromQuery[str] = "area", min_count: FromQuery[int | None] = None, tz: FromQuery[str] = "Europe/London",
    ) -> AnswerBreakdown:
        """Survey answers by area, ward, target, walk list, canvasser or week; cells below the threshold suppressed."""
        return await services.answers_breakdown(db_session, campaign_id, by, services.effective_threshold(settings, min_count), tz)

    @get("/issues", guards=[require_role(*REVIEWERS)])
    async def issues(
        self, campaign_id: FromPath[int], db_session: DbSession, settings: AppSettings, min_count: FromQuery[int | None] = None
    ) -> IssuesReport:
        """Top local issues raised, counted by area (small counts suppressed)."""
        return await services.issues_report(db_session, campaign_id, services.effective_threshold(settings, min_count))

    @get("/map", guards=[require_role(*REVIEWERS)])
    async def results_map(
        self, campaign_id: FromPath[int], db_session: DbSession, settings: AppSettings,
        support: FromQuery[str | None] = None, min_count: FromQuery[int | None] = None,
    ) -> ResultsFeatureCollection:
        """GeoJSON of areas with doors knocked, contact rate and support share, for a choropleth."""
        return await services.results_map(db_session, campaign_id, services.effective_threshold(settings, min_count), support)

    @get("/follow-ups", guards=[require_role(*REVIEWERS)])
    async def follow_ups(
        self, campaign_id: FromPath[int], db_session: DbSession, user: CurrentUser,
        reason: FromQuery[str | None] = None, include_done: FromQuery[bool] = False,
    ) -> FollowUpList:
        """People who asked to join, volunteer, be called back or for another language; consented contact only (audited)."""
        return await services.follow_up_list(db_session, campaign_id, user, reason=reason, include_done=include_done)

    @post("/follow-ups/{person_id:int}/done", guards=[require_role(*REVIEWERS)], status_code=200)
    async def follow_up_done(
        self, campaign_id: FromPath[int], person_id: FromPath[int], data: JSONBody[FollowUpDone], db_session: DbSession, user: CurrentUser
    ) -> FollowUpOut:
        """Mark one reason of a person's follow-up as done."""
        return await services.mark_follow_up_done(db_session, campaign_id, person_id, data, user)

    @get("/live", guards=[require_role(*REVIEWERS)])
    async def live(self, campaign_id: FromPath[int], db_session: DbSession, tz: FromQuery[str] = "Europe/London") -> LiveField:
        """The field today: lists out with progress, knocks by hour, each canvasser's last sync (polled by the console; no locations)."""
        return await live_field(db_session, campaign_id, tz)

    @get("/health", guards=[require_role(*REVIEWERS)])
    async def health(self, campaign_id: FromPath[int], db_session: DbSession, stale_hours: Annotated[float, QueryParameter(ge=0, le=MAX_STALE_HOURS)] = 24.0) -> DataHealth:
        """Open conflicts and rejected mutations per list and canvasser; devices not synced for `stale_hours`."""
        if not math.isfinite(stale_hours) or not 0 <= stale_hours <= MAX_STALE_HOURS:
            raise DomainError(
                f"stale_hours must be a number of hours from 0 to {MAX_STALE_HOURS}.",
                errors=[{"field": "stale_hours", "message": "not a finite number in range", "source": "query"}],
            )
        return await services.data_health(db_session, campaign_id, stale_hours)


def _download(body: bytes, media_type: str, filename: str) -> Response[bytes]:
    # Litestar adds "; charset=utf-8" to text types itself (a second one made "text/csv; charset=utf-8; charset=utf-8").
    return Response(body, media_type=media_type.split(";")[0], headers={"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"})


class ResultsExportController(Controller):
    """Downloads for meetings and QGIS; reviewers only, every one audited with its row count."""

    path = "/api/campaigns/{campaign_id:int}/exports"
    tags = ["results"]

    @get("/results.csv", guards=[require_role(*REVIEWERS)], media_type="text/csv")
    async def results_csv(
        self, campaign_id: FromPath[int], db_session: DbSession, settings: AppSettings, user: CurrentUser, min_count: FromQuery[int | None] = None
    ) -> Response[bytes]:
        """Results by area as CSV."""
        threshold = services.effective_threshold(settings, min_count)
        frame, _ = await services.area_results_frame(db_session, campaign_id, threshold)
        record_audit(db_session, user, "export", "exports/results.csv", campaign_id=campaign_id, row_count=len(frame), detail={"threshold": threshold})
        return _download(area_frame_to_csv(frame), "text/csv; charset=utf-8", f"results-{campaign_id}.csv")

    @get("/results.gpkg", guards=[require_role(*REVIEWERS)], media_type="application/geopackage+sqlite3")
    async def results_gpkg(
        self, campaign_id: FromPath[int], db_session: DbSession, settings: AppSettings, user: CurrentUser, min_count: FromQuery[int | None] = None
    ) -> Response[bytes]:
        """Results by area as a GeoPackage layer `results_by_area` (opens in QGIS)."""
        threshold = services.effective_threshold(settings, min_count)
        frame, _ = await services.area_results_frame(db_session, campaign_id, threshold)
        body = await asyncio.to_thread(area_frame_to_file, frame, "GPKG")
        record_audit(db_session, user, "export", "exports/results.gpkg", campaign_id=campaign_id, row_count=len(frame), detail={"threshold": threshold})
        return _download(body, "application/geopackage+sqlite3", f"results-{campaign_id}.gpkg")

    @get("/results.geojson", guards=[require_role(*REVIEWERS)], media_type="application/geo+json")
    async def results_geojson(
        self, campaign_id: FromPath[int], db_session: DbSession, settings: AppSettings, user: CurrentUser, min_count: FromQuery[int | None] = None
    ) -> Response[bytes]:
        """Results by area as a GeoJSON file."""
        threshold = services.effective_threshold(settings, min_count)
        frame, _ = await services.area_results_frame(db_session, campaign_id, threshold)
        body = await asyncio.to_thread(area_frame_to_file, frame, "GeoJSON")
        record_audit(db_session, user, "export", "exports/results.geojson", campaign_id=campaign_id, row_count=len(frame), detail={"threshold": threshold})
        return _download(body, "application/geo+json", f"results-{campaign_id}.geojson")

    @get("/follow-ups.csv", guards=[require_role(*REVIEWERS)], media_type="text/csv")
    async def follow_ups_csv(
        self, campaign_id: FromPath[int], db_session: DbSession, user: CurrentUser,
        reason: FromQuery[str | None] = None, include_done: FromQuery[bool] = False, layout: FromQuery[str] = "canvass",
    ) -> Response[bytes]:
        """The follow-up list as CSV (consented contact details only; audited as an export), in our layout or NationBuilder's or Action Network's."""
        check_follow_up_layout(layout)
        result = await services.follow_up_list(db_session, campaign_id, user, reason=reason, include_done=include_done, audit="export", layout=layout)
        suffix = "" if layout == "canvass" else "-" + layout.replace("_", "-")
        return _download(follow_ups_to_csv(result.people, layout), "text/csv; charset=utf-8", f"follow-ups{suffix}-{campaign_id}.csv")

    @get("/report.pdf", guards=[require_role(*REVIEWERS)], media_type="application/pdf")
    async def report_pdf(
        self, campaign_id: FromPath[int], db_session: DbSession, settings: AppSettings, user: CurrentUser,
        tz: FromQuery[str] = "Europe/London", min_count: FromQuery[int | None] = None,
    ) -> Response[bytes]:
        """The meeting report (one to three A4 pages): period, headline figures, voting intention and key questions, wards, targets, canvassers."""
        threshold = services.effective_threshold(settings, min_count)
        data = await meeting_report_data(db_session, campaign_id, threshold, tz)
        frame = data.area_frame
        body = await asyncio.to_thread(meeting_report_pdf, data)
        record_audit(db_session, user, "export", "exports/report.pdf", campaign_id=campaign_id, row_count=len(frame), detail={"threshold": threshold})
        return _download(body, "application/pdf", f"report-{campaign_id}.pdf")
