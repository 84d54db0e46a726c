"""Teams: a named group of a campaign's members with a team lead, which can hold walk lists.

A list assigned to a team is an open `Assignment` for each member, each naming the team
(`Assignment.team_id`). Sync scope therefore needs nothing new ("the lists I hold"), and
joining or leaving a team opens or ends that member's assignments of the team's lists, so
their phone gains or drops them on its next sync.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.schemas import TeamCreate, TeamOut, TeamPerson, TeamUpdate
from server.accounts.security import AuthUser
from server.db.models import Assignment, Membership, Team, TeamMember, User
from server.errors import ConflictError, InvalidInput, NotFound


def _now() -> datetime:
    return datetime.now(UTC)


async def get_team(session: AsyncSession, campaign_id: int, team_id: int) -> Team:
    """A team of the campaign, or 404."""
    team = await session.get(Team, team_id)
    if team is None or team.campaign_id != campaign_id:
        raise NotFound(f"No team {team_id} in this campaign.")
    return team


async def _require_member(session: AsyncSession, campaign_id: int, user_id: int, field: str) -> None:
    found = await session.scalar(select(Membership.id).where(Membership.user_id == user_id, Membership.campaign_id == campaign_id))
    if found is None:
        raise InvalidInput(f"User {user_id} is not a member of this campaign.", errors=[{"field": field, "message": "not a member"}])


async def team_lists(session: AsyncSession, team_id: int) -> list[int]:
    """Ids of the walk lists the team holds now."""
    return sorted(set((await session.scalars(
        select(Assignment.walk_list_id).where(Assignment.team_id == team_id, Assignment.ended_at.is_(None))
    )).all()))


async def team_outs(session: AsyncSession, campaign_id: int, team_ids: list[int] | None = None) -> list[TeamOut]:
    """The campaign's teams with their lead, members (display names) and lists."""
    query = select(Team).where(Team.campaign_id == campaign_id).order_by(Team.name)
    if team_ids is not None:
        query = query.where(Team.id.in_(team_ids))
    teams = (await session.scalars(query)).all()
    ids = [t.id for t in teams]
    members: dict[int, list[TeamPerson]] = {}
    names: dict[int, str] = {}
    for team_id, user_id, name in (await session.execute(
        select(TeamMember.team_id, User.id, User.display_name).join(User, User.id == TeamMember.user_id)
        .where(TeamMember.team_id.in_(ids)).order_by(User.display_name)
    )).all() if ids else []:
        members.setdefault(team_id, []).append(TeamPerson(user_id=user_id, display_name=name))
        names[user_id] = name
    held: dict[int, set[int]] = {}
    for team_id, list_id in (await session.execute(
        select(Assignment.team_id, Assignment.walk_list_id).where(Assignment.team_id.in_(ids), Assignment.ended_at.is_(None))
    )).all() if ids else []:
        held.setdefault(team_id, set()).add(list_id)
    return [
        TeamOut(
            id=t.id, name=t.name,
            lead=TeamPerson(user_id=t.lead_user_id, display_name=names.get(t.lead_user_id, "")) if t.lead_user_id else None,
            members=members.get(t.id, []), walk_list_ids=sorted(held.get(t.id, set())),
        )
        for t in teams
    ]


async def _name_taken(session: AsyncSession, campaign_id: int, name: str, but: int | None = None) -> None:
    query = select(Team.id).where(Team.campaign_id == campaign_id, Team.name == name)
    if but is not None:
        query = query.where(Team.id != but)
    if await session.scalar(query) is not None:
        raise ConflictError(f"There is already a team called {name!r} in this campaign.")


async def create_team(session: AsyncSession, actor: AuthUser, campaign_id: int, data: TeamCreate) -> TeamOut:
    """A new team; its lead and the given members must belong to the campaign."""
    name = data.name.strip()
    await _name_taken(session, campaign_id, name)
    wanted = list(dict.fromkeys([*( [data.lead_user_id] if data.lead_user_id else []), *data.member_ids]))
    for user_id in wanted:
        await _require_member(session, campaign_id, user_id, "member_ids" if user_id != data.lead_user_id else "lead_user_id")
    team = Team(campaign_id=campaign_id, name=name, lead_user_id=data.lead_user_id)
    session.add(team)
    await session.flush()
    for user_id in wanted:
        session.add(TeamMember(team_id=team.id, user_id=user_id))
    await session.flush()
    return (await team_outs(session, campaign_id, [team.id]))[0]


async def update_team(session: AsyncSession, actor: AuthUser, campaign_id: int, team_id: int, data: TeamUpdate) -> TeamOut:
    """Rename a team or change its lead (who joins the team, receiving its lists)."""
    team = await get_team(session, campaign_id, team_id)
    if data.name is not None:
        await _name_taken(session, campaign_id, data.name.strip(), but=team.id)
        team.name = data.name.strip()
    if data.lead_user_id is not None:
        await add_team_member(session, actor, campaign_id, team_id, data.lead_user_id, field="lead_user_id")
        team.lead_user_id = data.lead_user_id
    await session.flush()
    return (await team_outs(session, campaign_id, [team.id]))[0]


async def add_team_member(session: AsyncSession, actor: AuthUser, campaign_id: int, team_id: int, user_id: int, field: str = "user_id") -> TeamOut:
    """Add a member; they hold the team's lists from now (their phone gets them on its next sync)."""
    from server.walklists.services import record_list_change

    team = await get_team(session, campaign_id, team_id)
    await _require_member(session, campaign_id, user_id, field)
    if await session.scalar(select(TeamMember.id).where(TeamMember.team_id == team.id, TeamMember.user_id == user_id)) is None:
        session.add(TeamMember(team_id=team.id, user_id=user_id))
        for list_id in await team_lists(session, team.id):
            session.add(Assignment(walk_list_id=list_id, user_id=user_id, assigned_by=actor.id, team_id=team.id))
            await session.flush()
            await record_list_change(session, campaign_id, list_id)
    await session.flush()
    return (await team_outs(session, campaign_id, [team.id]))[0]


async def remove_team_member(session: AsyncSession, campaign_id: int, team_id: int, user_id: int) -> None:
    """Take a member out of a team: their phone drops the team's lists on its next sync (work already pushed is kept)."""
    from server.walklists.services import record_list_change

    team = await get_team(session, campaign_id, team_id)
    row = await session.scalar(select(TeamMember).where(TeamMember.team_id == team.id, TeamMember.user_id == user_id))
    if row is None:
        raise NotFound(f"User {user_id} is not in this team.")
    await session.delete(row)
    if team.lead_user_id == user_id:
        team.lead_user_id = None
    for assignment in (await session.scalars(
        select(Assignment).where(Assignment.team_id == team.id, Assignment.user_id == user_id, Assignment.ended_at.is_(None))
    )).all():
        assignment.ended_at = _now()
        await record_list_change(session, campaign_id, assignment.walk_list_id)
    await session.flush()


async def delete_team(session: AsyncSession, campaign_id: int, team_id: int) -> None:
    """Delete a team; the lists it held go back to unassigned."""
    from server.walklists.services import unassign_list

    team = await get_team(session, campaign_id, team_id)
    for list_id in await team_lists(session, team.id):
        await unassign_list(session, campaign_id, list_id)
    await session.flush()
    await session.delete(team)
    await session.flush()


async def team_members(session: AsyncSession, team_id: int) -> list[int]:
    """User ids of a team's members."""
    return list((await session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team_id).order_by(TeamMember.user_id))).all())



