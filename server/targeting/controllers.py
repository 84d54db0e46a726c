"""Organiser endpoints: measures, area ranking (GeoJSON for a choropleth), targets and previews."""

from __future__ import annotations

import shapely
from litestar import Controller, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy import select

from server.accounts.guards import ORGANISERS, REVIEWERS, require_role
from server.db.models import Target
from server.dependencies import AppSettings, CurrentUser, DbSession
from server.targeting import services
from server.targeting.schemas import (
    AreaRankingCollection,
    MeasurePreset,
    TargetCreate,
    TargetOut,
    TargetPreview,
)


class TargetingController(Controller):
    """Rank areas and manage targets of one campaign."""

    path = "/api/campaigns/{campaign_id:int}"
    tags = ["targeting"]

    @get("/measures", guards=[require_role(*REVIEWERS)])
    async def measures(self, campaign_id: FromPath[int]) -> list[MeasurePreset]:
        """Preset measures and the exact census columns each uses."""
        return services.list_presets()

    @get("/areas/rank", guards=[require_role(*REVIEWERS)])
    async def rank(
        self,
        campaign_id: FromPath[int],
        db_session: DbSession,
        measure: FromQuery[str] = "bame_share",
        kind: FromQuery[str | None] = None,
        threshold: FromQuery[float | None] = None,
        top_n: FromQuery[int | None] = None,
        min_population: FromQuery[int | None] = None,
        within_area: FromQuery[str | None] = None,
        within_target: FromQuery[int | None] = None,
    ) -> AreaRankingCollection:
        """Areas ranked by a measure (preset or formula), filtered; GeoJSON for a choropleth. `kind` defaults to the campaign's finest geography with census counts (OA, else LSOA, ...)."""
        return await services.rank_campaign_areas(
            db_session, campaign_id, measure=measure, kind=kind, threshold=threshold, top_n=top_n,
            min_population=min_population, within_area=within_area, within_target=within_target,
        )

    @post("/targets/preview", guards=[require_role(*ORGANISERS)], status_code=200)
    async def preview(self, campaign_id: FromPath[int], data: JSONBody[TargetCreate], db_session: DbSession, settings: AppSettings) -> TargetPreview:
        """What a target would hold, before saving it."""
        return await services.preview_target_request(db_session, campaign_id, data, settings)

    @post("/targets", guards=[require_role(*ORGANISERS)], status_code=201)
    async def create(
        self, campaign_id: FromPath[int], data: JSONBody[TargetCreate], db_session: DbSession, settings: AppSettings, user: CurrentUser
    ) -> TargetOut:
        """Save a target (drawn polygon, chosen areas, or their intersection/union) with its rule."""
        return await services.create_target(db_session, campaign_id, data, user.id, settings)

    @get("/targets", guards=[require_role(*REVIEWERS)])
    async def list_targets(self, campaign_id: FromPath[int], db_session: DbSession) -> list[TargetOut]:
        """The campaign's targets."""
        rows = (await db_session.scalars(select(Target).where(Target.campaign_id == campaign_id).order_by(Target.id))).all()
        return [services.target_out(t) for t in rows]

    @get("/targets/{target_id:int}", guards=[require_role(*REVIEWERS)])
    async def get_target(self, campaign_id: FromPath[int], target_id: FromPath[int], db_session: DbSession) -> TargetOut:
        """One target with its preview figures."""
        target = await services.get_target(db_session, campaign_id, target_id)
        preview = await services.preview_geometry(db_session, campaign_id, shapely.from_wkb(target.geometry))
        return services.target_out(target, preview)

    @delete("/targets/{target_id:int}", guards=[require_role(*ORGANISERS)], status_code=204)
    async def delete_target(self, campaign_id: FromPath[int], target_id: FromPath[int], db_session: DbSession) -> None:
        """Delete a target (its walk lists stay)."""
        await db_session.delete(await services.get_target(db_session, campaign_id, target_id))
