"""A join link for the demo campaign that a phone on the same network can open (printed by `make run`)."""

from __future__ import annotations

import socket

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.security import AuthUser, build_jwt_auth
from server.accounts.services import AccountService
from server.db.models import Campaign, Membership, Role, User
from server.demo import DEMO_SLUG
from server.errors import NotFound
from server.settings import Settings


def lan_address() -> str:
    """This machine's address on the local network (the route to a public address; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


async def demo_join_link(session: AsyncSession, settings: Settings, host: str, port: int) -> str:
    """A fresh join code of the demo campaign (made by its organiser), as the app's join URL on `host`."""
    campaign_id = await session.scalar(select(Campaign.id).where(Campaign.slug == DEMO_SLUG))
    organiser = (
        await session.execute(
            select(User).join(Membership, Membership.user_id == User.id).where(Membership.campaign_id == campaign_id, Membership.role == Role.organiser)
        )
    ).scalars().first()
    if campaign_id is None or organiser is None:
        raise NotFound("The demo campaign is not loaded: run `canvass demo` first.")
    actor = AuthUser(id=organiser.id, email=organiser.email, display_name=organiser.display_name, is_superuser=False,
                     roles={campaign_id: Role.organiser})
    accounts = AccountService(session, settings, build_jwt_auth(settings.secret_key, settings.access_token_minutes))
    join = await accounts.create_join_code(actor, campaign_id, hours_valid=72, max_uses=50)
    return f"http://{host}:{port}/app/join?code={join.code}"
