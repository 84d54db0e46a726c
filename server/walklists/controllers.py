"""Organiser endpoints for cutting, editing, assigning and exporting walk lists (and keying paper results)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from server.accounts.guards import MEMBERS, ORGANISERS, REVIEWERS, require_role
from server.db.models import ImportJob, Role
from server.dependencies import AppSettings, CurrentUser, DbSession
from server.errors import NotFound
from server.openapi import geojson_response
from server.walklists import services
from server.walklists.schemas import (
    AssignRequest,
    AssignTeamRequest,
    CutRequest,
    JobOut,
    MergeRequest,
    PaperForm,
    PaperResults,
    PaperResultsOut,
    ReknockRequest,
    RenameRequest,
    SplitRequest,
    WalkListDetail,
    WalkListOut,
)


class WalkListController(Controller):
    """Walk lists of one campaign."""

    path = "/api/campaigns/{campaign_id:int}"
    tags = ["walk lists"]

    @post("/targets/{target_id:int}/cut", guards=[require_role(*ORGANISERS)], status_code=202)
    async def cut(
        self, campaign_id: FromPath[int], target_id: FromPath[int], data: JSONBody[CutRequest], db_session: DbSession,
        user: CurrentUser, state: State, request: Request[Any, Any, Any], wait: FromQuery[bool] = False,
    ) -> Response[JobOut]:
        """Cut a target into routed lists as a background job (202; poll the job); `wait=true` answers 200 with the finished job.

        On PostgreSQL the job goes on the durable queue that `canvass worker` runs; on SQLite it runs in this process."""
        if wait:
            lists = await services.run_cut(state.sessionmaker, campaign_id, target_id, data)
            done = await services.record_finished_cut(db_session, campaign_id, target_id, user.id, lists)
            return Response(done, status_code=200)
        from server.db.models import Target

        target = await db_session.get(Target, target_id)
        if target is None or target.campaign_id != campaign_id:
            raise NotFound(f"No target {target_id} in this campaign.")
        waiting = "Waiting for a job worker (canvass worker)." if state.jobs.durable else ""
        job = ImportJob(campaign_id=campaign_id, kind="cut", status="queued", created_by=user.id, result={"target_id": target_id}, message=waiting)
        db_session.add(job)
        await db_session.commit()
        try:
            await state.jobs.submit_cut(job.id, campaign_id, target_id, data)
        except Exception:
            job.status, job.message = "failed", "The job could not be queued."
            await db_session.commit()
            raise
        return Response(services.job_out(job), status_code=202)

    @get("/jobs/{job_id:int}", guards=[require_role(*REVIEWERS)])
    async def job(self, campaign_id: FromPath[int], job_id: FromPath[int], db_session: DbSession) -> JobOut:
        """A background job's progress and result."""
        job = await db_session.get(ImportJob, job_id)
        if job is None or job.campaign_id != campaign_id:
            raise NotFound(f"No job {job_id} in this campaign.")
        return services.job_out(job)

    @get("/walklists", guards=[require_role(*MEMBERS)])
    async def list_lists(self, campaign_id: FromPath[int], db_session: DbSession, user: CurrentUser, target_id: FromQuery[int | None] = None) -> list[WalkListOut]:
        """Lists of the campaign (a canvasser sees only the lists assigned to them)."""
        role = user.role_in(campaign_id)
        only_user = user.id if (role == Role.canvasser and not user.is_superuser) else None
        outs = await services.list_outs(db_session, campaign_id, user_id=only_user)
        return [o for o in outs if target_id is None or o.target_id == target_id]

    @get("/walklists/map", guards=[require_role(*REVIEWERS)], responses={200: geojson_response("Every list's route: id, name, size, status, assignee (display name or null).")})
    async def lists_map(self, campaign_id: FromPath[int], db_session: DbSession, target_id: FromQuery[int | None] = None) -> dict[str, Any]:
        """Routes of every list as GeoJSON (no personal data), for the organiser map."""
        return await services.lists_geojson(db_session, campaign_id, target_id)

    @get("/walklists/{walk_list_id:int}", guards=[require_role(*MEMBERS)])
    async def detail(self, campaign_id: FromPath[int], walk_list_id: FromPath[int], db_session: DbSession, user: CurrentUser) -> WalkListDetail:
        """A list's doors in walking order with electors (audited; canvassers only their own lists)."""
        return await services.list_detail(db_session, user, campaign_id, walk_list_id)

    @patch("/walklists/{walk_list_id:int}", guards=[require_role(*ORGANISERS)])
    async def rename(self, campaign_id: FromPath[int], walk_list_id: FromPath[int], data: JSONBody[RenameRequest], db_session: DbSession) -> WalkListOut:
        """Rename a list."""
        return await services.rename_list(db_session, campaign_id, walk_list_id, data.name)

    @delete("/walklists/{walk_list_id:int}", guards=[require_role(*ORGANISERS)], status_code=204)
    async def delete_list(self, campaign_id: FromPath[int], walk_list_id: FromPath[int], db_session: DbSession) -> None:
        """Delete a list (its doors can be cut again); its holder's phone loses it on the next sync, and work recorded on it is kept."""
        await services.delete_list(db_session, campaign_id, walk_list_id)

    @post("/walklists/{walk_list_id:int}/assign", guards=[require_role(*ORGANISERS)], status_code=200)
    async def assign(self, campaign_id: FromPath[int], walk_list_id: FromPath[int], data: JSONBody[AssignRequest], db_session: DbSession, user: CurrentUser) -> WalkListOut:
        """Assign (or reassign) a list to a member of the campaign."""
        return await services.assign_list(db_session, user, campaign_id, walk_list_id, data.user_id)

    @post("/walklists/{walk_list_id:int}/assign-team", guards=[require_role(*ORGANISERS)], status_code=200)
    async def assign_team(
        self, campaign_id: FromPath[int], walk_list_id: FromPath[int], data: JSONBody[AssignTeamRequest], db_session: DbSession, user: CurrentUser
    ) -> WalkListOut:
        """Assign a list to a team: each member holds it (and syncs it) until it is reassigned or they leave the team."""
        return await services.assign_list_to_team(db_session, user, campaign_id, walk_list_id, data.team_id)

    @delete("/walklists/{walk_list_id:int}/assign", guards=[require_role(*ORGANISERS)], status_code=204)
    async def unassign(self, campaign_id: FromPath[int], walk_list_id: FromPath[int], db_session: DbSession) -> None:
        """Take a list back from its canvasser."""
        await services.unassign_list(db_session, campaign_id, walk_list_id)

    @post("/walklists/merge", guards=[require_role(*ORGANISERS)], status_code=200)
    async def merge(self, campaign_id: FromPath[int], data: JSONBody[MergeRequest], db_session: DbSession) -> list[WalkListOut]:
        """Merge lists into the first and re-route it (lists split by a major road stay one list per side); the others' holders lose them."""
        kept = await services.reroute_lists(db_session, campaign_id, data.walk_list_ids, parts=1)
        return await services.list_outs(db_session, campaign_id, [w.id for w in kept])

    @post("/walklists/reknock", guards=[require_role(*ORGANISERS)], status_code=200)
    async def reknock(self, campaign_id: FromPath[int], data: JSONBody[ReknockRequest], db_session: DbSession) -> list[WalkListOut]:
        """A new routed list of the doors whose latest outcome is not_home or come_back (do-not-visit households left off)."""
        made = await services.reknock_lists(db_session, campaign_id, data.walk_list_ids, data.name)
        return await services.list_outs(db_session, campaign_id, [w.id for w in made])

    @post("/walklists/{walk_list_id:int}/split", guards=[require_role(*ORGANISERS)], status_code=200)
    async def split(self, campaign_id: FromPath[int], walk_list_id: FromPath[int], data: JSONBody[SplitRequest], db_session: DbSession) -> list[WalkListOut]:
        """Split a list into compact, re-routed parts."""
        kept = await services.reroute_lists(db_session, campaign_id, [walk_list_id], parts=data.parts)
        return await services.list_outs(db_session, campaign_id, [w.id for w in kept])

    @post("/walklists/{walk_list_id:int}/reroute", guards=[require_role(*ORGANISERS)], status_code=200)
    async def reroute(self, campaign_id: FromPath[int], walk_list_id: FromPath[int], db_session: DbSession) -> list[WalkListOut]:
        """Re-order a list's doors (after streets were imported, say)."""
        kept = await services.reroute_lists(db_session, campaign_id, [walk_list_id], parts=1)
        return await services.list_outs(db_session, campaign_id, [w.id for w in kept])

    @get("/walklists/{walk_list_id:int}/export.geojson", guards=[require_role(*REVIEWERS)], media_type="application/geo+json")
    async def export_geojson(self, campaign_id: FromPath[int], walk_list_id: FromPath[int], db_session: DbSession, user: CurrentUser) -> Response[str]:
        """Stops and route as GeoJSON (organisers, leads and admins; audited)."""
        body = await services.export_geojson(db_session, user, campaign_id, walk_list_id)
        return Response(services.json_dumps(body), media_type="application/geo+json",
                        headers={"content-disposition": f'attachment; filename="walk-list-{walk_list_id}.geojson"'})

    @get("/walklists/{walk_list_id:int}/export.csv", guards=[require_role(*REVIEWERS)], media_type="text/csv")
    async def export_csv(self, campaign_id: FromPath[int], walk_list_id: FromPath[int], db_session: DbSession, user: CurrentUser) -> Response[str]:
        """Doors and electors in walking order as CSV, formula cells neutralised (organisers, leads and admins; audited)."""
        body = await services.export_csv(db_session, user, campaign_id, walk_list_id)
        return Response(body, media_type="text/csv", headers={"content-disposition": f'attachment; filename="walk-list-{walk_list_id}.csv"'})

    @get("/walklists/{walk_list_id:int}/sheet.pdf", guards=[require_role(*REVIEWERS)], media_type="application/pdf")
    async def sheet(self, campaign_id: FromPath[int], walk_list_id: FromPath[int], db_session: DbSession, user: CurrentUser, settings: AppSettings) -> Response[bytes]:
        """A printable walk sheet (organisers, leads and admins; audited)."""
        body = await services.export_pdf(db_session, user, campaign_id, walk_list_id, settings.public_url)
        return Response(body, media_type="application/pdf", headers={"content-disposition": f'attachment; filename="walk-list-{walk_list_id}.pdf"'})

    @get("/walklists/{walk_list_id:int}/paper-form", guards=[require_role(*ORGANISERS)])
    async def paper_form(self, campaign_id: FromPath[int], walk_list_id: FromPath[int], db_session: DbSession, user: CurrentUser) -> PaperForm:
        """The key-in form of a list's walk sheet: its outcome codes, short survey answers and rows in the sheet's order (audited: names the electors)."""
        return await services.paper_form(db_session, user, campaign_id, walk_list_id)

    @post("/walklists/{walk_list_id:int}/paper-results", guards=[require_role(*ORGANISERS)], status_code=200)
    async def paper_results(
        self, campaign_id: FromPath[int], walk_list_id: FromPath[int], data: JSONBody[PaperResults], db_session: DbSession, user: CurrentUser, settings: AppSettings
    ) -> PaperResultsOut:
        """Key in a paper sheet's results; they merge exactly like a phone's push."""
        return await services.key_paper_results(db_session, user, campaign_id, walk_list_id, data, settings.max_clock_skew_seconds * 1000)
