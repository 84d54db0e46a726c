"""Campaigns: creation and the list a caller may see."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.security import AuthUser
from server.campaigns.schemas import CampaignCreate, CampaignOut
from server.db.models import Campaign, Membership, Role
from server.errors import ConflictError, NotFound


def campaign_out(campaign: Campaign, role: Role | None) -> CampaignOut:
    """Struct for a campaign row."""
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        slug=campaign.slug,
        polling_day=campaign.polling_day,
        retention_days=campaign.retention_days,
        created_at=campaign.created_at if campaign.created_at.tzinfo else campaign.created_at.replace(tzinfo=UTC),
        role=role,
    )


async def create_campaign(session: AsyncSession, data: CampaignCreate, creator_id: int | None) -> Campaign:
    """Create a campaign; its creator (if any) becomes admin."""
    if await session.scalar(select(Campaign.id).where(Campaign.slug == data.slug)) is not None:
        raise ConflictError(f"A campaign with slug {data.slug!r} already exists.")
    campaign = Campaign(name=data.name, slug=data.slug, polling_day=data.polling_day, retention_days=data.retention_days)
    session.add(campaign)
    await session.flush()
    if creator_id is not None:
        session.add(Membership(user_id=creator_id, campaign_id=campaign.id, role=Role.admin))
        await session.flush()
    return campaign


async def list_campaigns_for(session: AsyncSession, user: AuthUser) -> list[CampaignOut]:
    """Campaigns the caller is a member of (all of them for a system administrator)."""
    query = select(Campaign).order_by(Campaign.id)
    if not user.is_superuser:
        query = query.where(Campaign.id.in_(list(user.roles)))
    return [campaign_out(c, user.role_in(c.id)) for c in (await session.scalars(query)).all()]


async def get_campaign(session: AsyncSession, campaign_id: int) -> Campaign:
    """A campaign by id, or 404."""
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"No campaign {campaign_id}.")
    return campaign
