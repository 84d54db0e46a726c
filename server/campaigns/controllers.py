"""HTTP handlers of the campaigns domain."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from server.accounts.guards import MEMBERS, require_authenticated, require_role, require_superuser
from server.campaigns import services
from server.campaigns.schemas import CampaignCreate, CampaignOut
from server.dependencies import CurrentUser, DbSession


class CampaignController(Controller):
    """Create and list campaigns."""

    path = "/api/campaigns"
    tags = ["campaigns"]

    @get("/", guards=[require_authenticated], opt={"device_ok": True})
    async def list_campaigns(self, db_session: DbSession, user: CurrentUser) -> list[CampaignOut]:
        """The campaigns the caller belongs to."""
        return await services.list_campaigns_for(db_session, user)

    @post("/", guards=[require_superuser], status_code=201)
    async def create_campaign(self, data: JSONBody[CampaignCreate], db_session: DbSession, user: CurrentUser) -> CampaignOut:
        """Create a campaign (system administrators); the creator becomes its admin."""
        campaign = await services.create_campaign(db_session, data, user.id)
        return services.campaign_out(campaign, None)

    @get("/{campaign_id:int}", guards=[require_role(*MEMBERS)], opt={"device_ok": True})
    async def get_campaign(self, campaign_id: FromPath[int], db_session: DbSession, user: CurrentUser) -> CampaignOut:
        """One campaign."""
        campaign = await services.get_campaign(db_session, campaign_id)
        return services.campaign_out(campaign, user.role_in(campaign_id))
