"""Walk lists: cut a target into balanced, routed lists; assign, rename, merge, split, re-route; export.

The cutting and routing are pure (geo/walklists.py, geo/routing.py); this
module gathers the doors of a target from the database (a block of flats is
one stop with many doors; households flagged do-not-visit are left off),
builds the street network from the campaign's streets (major roads are
barriers), stores the plans, and records feed changes so phones see
assignments. Assignments are server-authoritative.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import mapping
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from geo.streets import StreetNetwork, StreetNetworkError, street_network_from_lines
from geo.walklists import WalkListError, WalkListPlan, cut_walk_lists
from server.accounts.security import AuthUser
from server.audit import record_audit
from server.db.models import (
    Address,
    Assignment,
    Flag,
    ImportJob,
    Membership,
    Person,
    Role,
    Street,
    Survey,
    Target,
    Team,
    User,
    WalkList,
    WalkListStop,
)
from server.errors import DomainError, InvalidInput, NotFound
from server.spreadsheet import csv_text
from server.walklists.schemas import (
    Assignee,
    CutRequest,
    JobOut,
    PaperCode,
    PaperForm,
    PaperQuestion,
    PaperResults,
    PaperResultsOut,
    PaperRow,
    PersonOnList,
    StopOut,
    TeamHolder,
    WalkListDetail,
    WalkListOut,
)

logger = logging.getLogger("canvass.walklists")
Progress = Callable[[int, int], None]
PAPER_NAMESPACE = uuid.UUID("6f1c2b0e-58a4-4a8e-9d7f-2b1f3c7a9e10")
STREET_MARGIN_DEG = 0.004  # ~400 m of streets around a target, so routes can leave and re-enter it


def _now() -> datetime:
    return datetime.now(UTC)


def _natural_key(text: object) -> tuple[Any, ...]:
    """Sort "Flat 2" before "Flat 10" (missing values first)."""
    value = text if isinstance(text, str) else ""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", value))


# ------------------------------------------------------------------ gathering doors


def stops_by_building(addresses: pd.DataFrame) -> gpd.GeoDataFrame:
    """One stop per building (flats share a door): mean point, door count, street and first house number."""
    grouped = addresses.groupby("building_key", sort=True).agg(
        lon=("lon", "mean"), lat=("lat", "mean"), doors=("address_id", "size"), street=("street", "first"), house_number=("house_number", "first")
    )
    return gpd.GeoDataFrame(
        {"stop_id": grouped.index.to_numpy(), "doors": grouped["doors"].to_numpy(), "street": grouped["street"].to_numpy(),
         "house_number": grouped["house_number"].to_numpy()},
        geometry=gpd.points_from_xy(grouped["lon"], grouped["lat"]),
        crs="EPSG:4326",
    )


async def target_doors(session: AsyncSession, campaign_id: int, target: Target) -> tuple[gpd.GeoDataFrame, pd.DataFrame, int]:
    """Stops (one per building) inside a target, the addresses behind them, and how many were left off as do-not-visit."""
    if target.geometry is None:
        raise InvalidInput("This target has no geometry.")
    polygon = shapely.from_wkb(target.geometry)
    rows = (
        await session.execute(
            select(Address.id, Address.lon, Address.lat, Address.building_key, Address.street, Address.house_number, Address.flat)
            .where(
                Address.campaign_id == campaign_id,
                Address.lon >= target.min_lon, Address.lon <= target.max_lon,
                Address.lat >= target.min_lat, Address.lat <= target.max_lat,
            )
        )
    ).all()
    frame = pd.DataFrame(rows, columns=["address_id", "lon", "lat", "building_key", "street", "house_number", "flat"])
    if frame.empty:
        raise InvalidInput("The target holds no addresses: import addresses, or draw it over the loaded data.")
    inside = shapely.contains_xy(polygon, frame["lon"].to_numpy(), frame["lat"].to_numpy())
    frame = frame[inside]
    blocked = set(
        (await session.scalars(
            select(Flag.address_id).where(Flag.campaign_id == campaign_id, Flag.kind == "do_not_visit", Flag.active.is_(True), Flag.person_key == 0)
        )).all()
    )
    skipped = int(frame["address_id"].isin(blocked).sum())
    frame = frame[~frame["address_id"].isin(blocked)]
    if frame.empty:
        raise InvalidInput("The target holds no addresses that may be visited.")
    return stops_by_building(frame), frame, skipped


async def street_lines_for(session: AsyncSession, campaign_id: int, bounds: Sequence[float]) -> gpd.GeoDataFrame | None:
    """The campaign's street lines (name, highway; WGS84) around the given lon/lat bounds (None when none are loaded)."""
    minx, miny, maxx, maxy = bounds
    m = STREET_MARGIN_DEG
    rows = (
        await session.execute(
            select(Street.name, Street.highway, Street.geometry).where(
                Street.campaign_id == campaign_id,
                Street.max_lon >= minx - m, Street.min_lon <= maxx + m,
                Street.max_lat >= miny - m, Street.min_lat <= maxy + m,
            )
        )
    ).all()
    if not rows:
        return None
    return gpd.GeoDataFrame(
        {"name": [r.name for r in rows], "highway": [r.highway for r in rows]},
        geometry=shapely.from_wkb([r.geometry for r in rows]),
        crs="EPSG:4326",
    )


async def street_network_for(session: AsyncSession, campaign_id: int, bounds: Sequence[float]) -> StreetNetwork | None:
    """The campaign's streets around the given lon/lat bounds as a routable network (None when none are loaded)."""
    lines = await street_lines_for(session, campaign_id, bounds)
    if lines is None:
        return None
    try:
        return await asyncio.to_thread(street_network_from_lines, lines)
    except StreetNetworkError as exc:
        # Unroutable street data must not block cutting: fall back to straight-line distances.
        logger.warning("campaign %s: street network unusable (%s); routing by straight lines", campaign_id, exc)
        return None


async def streets_near(session: AsyncSession, campaign_id: int, bounds: Sequence[float], margin: float = 0.0015) -> list[tuple[str, list[tuple[float, float]]]]:
    """The campaign's street lines (name, lon/lat points) around some bounds, for drawing on a walk sheet."""
    minx, miny, maxx, maxy = bounds
    rows = (await session.execute(
        select(Street.name, Street.geometry).where(
            Street.campaign_id == campaign_id,
            Street.max_lon >= minx - margin, Street.min_lon <= maxx + margin,
            Street.max_lat >= miny - margin, Street.min_lat <= maxy + margin,
        )
    )).all()
    lines = []
    for name, wkb in rows:
        geometry = shapely.from_wkb(wkb)
        for part in getattr(geometry, "geoms", [geometry]):
            lines.append((name or "", [(float(x), float(y)) for x, y in part.coords]))
    return lines


async def store_streets(session: AsyncSession, campaign_id: int, lines: gpd.GeoDataFrame, source: str) -> int:
    """Insert street lines (WGS84; columns name, highway) for a campaign."""
    from sqlalchemy import insert

    lines = lines.to_crs("EPSG:4326")
    bounds = shapely.bounds(lines.geometry.to_numpy())
    wkb = shapely.to_wkb(lines.geometry.to_numpy())
    rows = [
        {
            "campaign_id": campaign_id, "name": str(name or ""), "highway": str(highway), "geometry": wkb[i],
            "min_lon": float(bounds[i, 0]), "min_lat": float(bounds[i, 1]), "max_lon": float(bounds[i, 2]), "max_lat": float(bounds[i, 3]),
            "source": source,
        }
        for i, (name, highway) in enumerate(zip(lines["name"], lines["highway"], strict=True))
    ]
    for start in range(0, len(rows), 2000):
        await session.execute(insert(Street), rows[start : start + 2000])
    return len(rows)


# ------------------------------------------------------------------ cutting

STRAIGHT_LINE_WARNING = (
    "No streets are imported around these doors, so the lists were routed by straight lines between doors: "
    "lengths and minutes are estimates and routes may cross major roads. Import streets (canvass import streets) and re-route."
)


def routing_of(network: StreetNetwork | None) -> str:
    """How lists are routed with this network: "street_network", or "straight_line" when there is none."""
    return "street_network" if network is not None else "straight_line"


def routing_warnings(routing: str | None) -> list[str]:
    """The warning an organiser should see for a routing (none for street-network routes)."""
    return [STRAIGHT_LINE_WARNING] if routing == "straight_line" else []


def cut_result(lists: Sequence[WalkList]) -> dict[str, Any]:
    """A finished cut's job result: the new list ids, their doors and how they were routed."""
    routing = lists[0].routing if lists else None
    return {"walk_list_ids": [w.id for w in lists], "lists": len(lists), "doors": sum(w.doors for w in lists),
            "routing": routing, "warnings": routing_warnings(routing)}


@dataclass
class CutInput:
    """Everything a cut needs, read in one short transaction (so the long computation holds no lock)."""

    target_name: str
    stops: gpd.GeoDataFrame
    addresses: pd.DataFrame
    network: StreetNetwork | None
    routing: str | None = None
    """How the plans were routed, when they were cut elsewhere (a national cut's partition); else from `network`."""


async def prepare_cut(session: AsyncSession, campaign_id: int, target_id: int) -> CutInput:
    """Read a target's doors and the streets around them."""
    target = await session.get(Target, target_id)
    if target is None or target.campaign_id != campaign_id:
        raise NotFound(f"No target {target_id} in this campaign.")
    stops, addresses, _skipped = await target_doors(session, campaign_id, target)
    network = await street_network_for(session, campaign_id, stops.total_bounds)
    return CutInput(target_name=target.name, stops=stops, addresses=addresses, network=network)


async def plan_cut(cut: CutInput, request: CutRequest, progress: Progress | None = None) -> list[WalkListPlan]:
    """Cut and route in a worker thread (pure; no database)."""
    try:
        return await asyncio.to_thread(
            cut_walk_lists, cut.stops, request.size, request.unit, cut.network, request.minutes_per_door, request.walk_speed_m_per_min, progress
        )
    except WalkListError as exc:
        raise InvalidInput(str(exc), errors=[{"field": "size", "message": str(exc)}]) from exc


async def store_cut(
    session: AsyncSession, campaign_id: int, target_id: int, cut: CutInput, plans: list[WalkListPlan], replace: bool, number_from: int | None = None
) -> list[WalkList]:
    """Write the planned lists and their stops (one short write transaction), numbered after the target's lists (or from `number_from`)."""
    if await session.get(Target, target_id) is None:
        raise NotFound(f"Target {target_id} was deleted while it was being cut.")
    if replace:
        await delete_unassigned_lists(session, campaign_id, target_id)
    if number_from is None:
        number_from = 1 + int(await session.scalar(select(func.count()).select_from(WalkList).where(WalkList.target_id == target_id)) or 0)
    by_building = {key: sorted(group.itertuples(index=False), key=lambda r: (_natural_key(r.flat), r.address_id))
                   for key, group in cut.addresses.groupby("building_key")}
    lists = []
    routing = cut.routing or routing_of(cut.network)
    for number, plan in enumerate(plans, start=number_from):
        walk_list = WalkList(
            campaign_id=campaign_id, target_id=target_id, name=f"{cut.target_name} {number:02d}", status="ready",
            doors=int(plan.doors), length_m=round(float(plan.length_m), 1), minutes=round(float(plan.minutes), 1),
            route=shapely.to_wkb(plan.route) if plan.route is not None and not plan.route.is_empty else None,
            size_exception=plan.size_exception, routing=routing,
        )
        session.add(walk_list)
        lists.append((walk_list, plan))
    await session.flush()
    stop_rows = []
    for walk_list, plan in lists:
        position = 0
        for stop_number, building_key in enumerate(plan.stop_ids, start=1):
            for row in by_building[building_key]:
                position += 1
                stop_rows.append({"walk_list_id": walk_list.id, "address_id": int(row.address_id), "stop_number": stop_number, "position": position})
    if stop_rows:
        from sqlalchemy import insert

        for start in range(0, len(stop_rows), 2000):
            await session.execute(insert(WalkListStop), stop_rows[start : start + 2000])
    return [w for w, _ in lists]


async def cut_target(
    session: AsyncSession, campaign_id: int, target_id: int, request: CutRequest, progress: Progress | None = None
) -> list[WalkList]:
    """Cut a target into routed walk lists and store them, all in the caller's session."""
    cut = await prepare_cut(session, campaign_id, target_id)
    plans = await plan_cut(cut, request, progress)
    return await store_cut(session, campaign_id, target_id, cut, plans, request.replace)


async def run_cut(sessionmaker: Any, campaign_id: int, target_id: int, request: CutRequest, progress: Progress | None = None) -> list[WalkList]:
    """Cut with a read transaction, a lock-free computation and a write transaction.

    On SQLite every transaction takes the write lock (BEGIN IMMEDIATE), so the
    minutes of cutting a borough must not run inside one: progress updates and
    every other request would wait on it.
    """
    async with sessionmaker() as session:
        cut = await prepare_cut(session, campaign_id, target_id)
        await session.rollback()
    plans = await plan_cut(cut, request, progress)
    async with sessionmaker() as session:
        lists = await store_cut(session, campaign_id, target_id, cut, plans, request.replace)
        await session.commit()
        return lists


async def delete_unassigned_lists(session: AsyncSession, campaign_id: int, target_id: int) -> None:
    """Delete a target's lists no one holds (before cutting it again)."""
    assigned = select(Assignment.walk_list_id).where(Assignment.ended_at.is_(None))
    # a phone may still know a list taken back since its last pull: it is told what to drop
    doomed = (await session.scalars(
        select(WalkList.id).where(WalkList.campaign_id == campaign_id, WalkList.target_id == target_id, WalkList.id.not_in(assigned))
    )).all()
    await erase_stops(session, campaign_id, doomed)
    await session.execute(
        delete(WalkList).where(WalkList.campaign_id == campaign_id, WalkList.target_id == target_id, WalkList.id.not_in(assigned))
    )


# ------------------------------------------------------------------ reading


async def list_outs(session: AsyncSession, campaign_id: int, walk_list_ids: Sequence[int] | None = None, user_id: int | None = None) -> list[WalkListOut]:
    """Summaries of the campaign's lists (optionally only those assigned to `user_id`)."""
    query = select(WalkList).where(WalkList.campaign_id == campaign_id).order_by(WalkList.id)
    if walk_list_ids is not None:
        query = query.where(WalkList.id.in_(list(walk_list_ids)))
    if user_id is not None:
        query = query.where(WalkList.id.in_(select(Assignment.walk_list_id).where(Assignment.user_id == user_id, Assignment.ended_at.is_(None))))
    lists = (await session.scalars(query)).all()
    ids = [w.id for w in lists]
    stop_counts = dict(
        (await session.execute(
            select(WalkListStop.walk_list_id, func.count(func.distinct(WalkListStop.stop_number))).where(WalkListStop.walk_list_id.in_(ids)).group_by(WalkListStop.walk_list_id)
        )).all()
    ) if ids else {}
    do_not_knock = dict(
        (await session.execute(
            select(WalkListStop.walk_list_id, func.count()).join(Flag, Flag.address_id == WalkListStop.address_id)
            .where(WalkListStop.walk_list_id.in_(ids), *_household_do_not_visit(campaign_id)).group_by(WalkListStop.walk_list_id)
        )).all()
    ) if ids else {}
    assignees: dict[int, Assignee] = {}
    teams: dict[int, TeamHolder] = {}
    for row in (await session.execute(
        select(Assignment.walk_list_id, Assignment.user_id, Assignment.assigned_at, User.display_name, Team.id.label("team_id"),
               Team.name.label("team_name"), Team.lead_user_id)
        .join(User, User.id == Assignment.user_id)
        .outerjoin(Team, Team.id == Assignment.team_id)
        .where(Assignment.walk_list_id.in_(ids), Assignment.ended_at.is_(None))
        .order_by(Assignment.walk_list_id, User.display_name)
    )).all() if ids else []:
        if row.team_id is not None:
            holder = teams.setdefault(row.walk_list_id, TeamHolder(team_id=row.team_id, name=row.team_name, members=0))
            holder.members += 1
        # A team's list names its lead as the assignee (else its first member by name).
        if row.walk_list_id not in assignees or (row.team_id is not None and row.user_id == row.lead_user_id):
            assignees[row.walk_list_id] = Assignee(user_id=row.user_id, display_name=row.display_name, assigned_at=row.assigned_at)
    return [
        WalkListOut(
            id=w.id, name=w.name, status=w.status, target_id=w.target_id, doors=w.doors, stops=int(stop_counts.get(w.id, 0)),
            length_m=w.length_m, minutes=w.minutes, assignee=assignees.get(w.id), size_exception=w.size_exception, routing=w.routing,
            do_not_knock=int(do_not_knock.get(w.id, 0)), team=teams.get(w.id),
        )
        for w in lists
    ]


def _household_do_not_visit(campaign_id: int) -> tuple[Any, ...]:
    """Conditions on Flag for an active do-not-visit of a whole household (the door is skipped)."""
    return (Flag.campaign_id == campaign_id, Flag.kind == "do_not_visit", Flag.active.is_(True), Flag.person_key == 0)


async def get_list(session: AsyncSession, campaign_id: int, walk_list_id: int) -> WalkList:
    """A list of the campaign, or 404."""
    walk_list = await session.get(WalkList, walk_list_id)
    if walk_list is None or walk_list.campaign_id != campaign_id:
        raise NotFound(f"No walk list {walk_list_id} in this campaign.")
    return walk_list


async def may_see_list(session: AsyncSession, user: AuthUser, campaign_id: int, walk_list_id: int) -> bool:
    """Organisers, leads and admins see every list; a canvasser only the lists assigned to them now."""
    role = user.role_in(campaign_id)
    if user.is_superuser or role in (Role.admin, Role.organiser, Role.lead):
        return True
    held = await session.scalar(
        select(Assignment.id).where(Assignment.walk_list_id == walk_list_id, Assignment.user_id == user.id, Assignment.ended_at.is_(None))
    )
    return held is not None


async def list_detail(session: AsyncSession, user: AuthUser, campaign_id: int, walk_list_id: int) -> WalkListDetail:
    """A list with its stops and electors (an audited read of personal data)."""
    walk_list = await get_list(session, campaign_id, walk_list_id)
    if not await may_see_list(session, user, campaign_id, walk_list_id):
        raise NotFound(f"No walk list {walk_list_id} in this campaign.")
    stops = await _stop_rows(session, campaign_id, walk_list_id)
    record_audit(session, user, "read", f"walk_list:{walk_list_id}", campaign_id=campaign_id,
                 row_count=sum(len(s.people) for s in stops), detail={"stops": len(stops)})
    summary = (await list_outs(session, campaign_id, [walk_list_id]))[0]
    route = mapping(shapely.from_wkb(walk_list.route)) if walk_list.route else None
    return WalkListDetail(summary=summary, route=route, stops=stops)


async def _stop_rows(session: AsyncSession, campaign_id: int, walk_list_id: int) -> list[StopOut]:
    rows = (
        await session.execute(
            select(WalkListStop.position, WalkListStop.stop_number, Address)
            .join(Address, Address.id == WalkListStop.address_id)
            .where(WalkListStop.walk_list_id == walk_list_id)
            .order_by(WalkListStop.position)
        )
    ).all()
    address_ids = [a.id for _, _, a in rows]
    people: dict[int, list[PersonOnList]] = {}
    for person in (await session.scalars(
        select(Person).where(Person.address_id.in_(address_ids)).order_by(Person.polling_district, Person.elector_number, Person.elector_suffix)
    )).all():
        people.setdefault(person.address_id or 0, []).append(
            PersonOnList(id=person.id, name=f"{person.forenames} {person.surname}".strip(), polling_district=person.polling_district,
                         elector_number=person.elector_number, elector_suffix=person.elector_suffix)
        )
    flags = (await session.execute(
        select(Flag.address_id, Flag.person_key).where(Flag.campaign_id == campaign_id, Flag.address_id.in_(address_ids), Flag.kind == "do_not_visit", Flag.active.is_(True))
    )).all() if address_ids else []
    blocked = {address_id for address_id, _ in flags}
    household = {address_id for address_id, person_key in flags if not person_key}
    return [
        StopOut(
            position=position, stop_number=stop_number, address_id=a.id, address=", ".join(a.lines), postcode=a.postcode,
            lon=a.lon, lat=a.lat, do_not_visit=a.id in blocked, people=people.get(a.id, []), skip=a.id in household,
        )
        for position, stop_number, a in rows
    ]


async def lists_geojson(session: AsyncSession, campaign_id: int, target_id: int | None = None) -> dict[str, Any]:
    """Every list's route as GeoJSON for the organiser map (no personal data)."""
    outs = {o.id: o for o in await list_outs(session, campaign_id)}
    query = select(WalkList.id, WalkList.route).where(WalkList.campaign_id == campaign_id)
    if target_id is not None:
        query = query.where(WalkList.target_id == target_id)
    # Where each list starts (its first door) and the doors it walks past (household do-not-knock): points only, no address text.
    in_campaign = select(WalkList.id).where(WalkList.campaign_id == campaign_id)
    starts = {
        list_id: [round(lon, 6), round(lat, 6)]
        for list_id, lon, lat in (await session.execute(
            select(WalkListStop.walk_list_id, Address.lon, Address.lat).join(Address, Address.id == WalkListStop.address_id)
            .where(WalkListStop.walk_list_id.in_(in_campaign), WalkListStop.position == 1)
        )).all()
    }
    skipped: dict[int, list[list[float]]] = {}
    for list_id, lon, lat in (await session.execute(
        select(WalkListStop.walk_list_id, Address.lon, Address.lat)
        .join(Address, Address.id == WalkListStop.address_id)
        .join(Flag, Flag.address_id == WalkListStop.address_id)
        .where(WalkListStop.walk_list_id.in_(in_campaign), *_household_do_not_visit(campaign_id))
        .order_by(WalkListStop.walk_list_id, WalkListStop.position)
    )).all():
        skipped.setdefault(list_id, []).append([round(lon, 6), round(lat, 6)])
    features = []
    for list_id, route in (await session.execute(query.order_by(WalkList.id))).all():
        out = outs[list_id]
        features.append({
            "type": "Feature",
            "geometry": mapping(shapely.from_wkb(route)) if route else None,
            "properties": {"id": out.id, "name": out.name, "doors": out.doors, "stops": out.stops, "minutes": out.minutes,
                           "length_m": out.length_m, "status": out.status, "target_id": out.target_id, "routing": out.routing,
                           "assignee": out.assignee.display_name if out.assignee else None,
                           "team": out.team.name if out.team else None, "do_not_knock": out.do_not_knock,
                           "start": starts.get(list_id), "skipped": skipped.get(list_id, [])},
        })
    return {"type": "FeatureCollection", "features": features}


# ------------------------------------------------------------------ editing


async def erase_stops(session: AsyncSession, campaign_id: int, walk_list_ids: Sequence[int]) -> None:
    """Delete the lists' stops and tell phones: an ``erase`` change row per stop, naming its list
    and its address, so a phone that held a list which is then deleted or merged away is also told
    to drop the list's doors and electors (``server.sync.pull._scope_removals``)."""
    from server.sync.changes import change_row, record_changes

    if not walk_list_ids:
        return
    stops = (await session.execute(
        select(WalkListStop.id, WalkListStop.walk_list_id, WalkListStop.address_id).where(WalkListStop.walk_list_id.in_(list(walk_list_ids)))
    )).all()
    await session.execute(delete(WalkListStop).where(WalkListStop.walk_list_id.in_(list(walk_list_ids))))
    await record_changes(session, [
        change_row(campaign_id, "stop", stop_id, "erase", walk_list_id=list_id, address_id=address_id)
        for stop_id, list_id, address_id in stops
    ])


async def record_list_change(session: AsyncSession, campaign_id: int, walk_list_id: int) -> None:
    """Tell phones holding the list that it changed (assignment, name, order)."""
    from server.sync.changes import record_change

    await record_change(session, campaign_id=campaign_id, entity="walk_list", entity_id=walk_list_id, walk_list_id=walk_list_id)


async def assign_list(session: AsyncSession, actor: AuthUser, campaign_id: int, walk_list_id: int, user_id: int) -> WalkListOut:
    """Give a list to a member of the campaign, ending any current assignment (work done so far is kept)."""
    walk_list = await get_list(session, campaign_id, walk_list_id)
    member = await session.scalar(select(Membership).where(Membership.user_id == user_id, Membership.campaign_id == campaign_id))
    if member is None:
        raise InvalidInput(f"User {user_id} is not a member of this campaign.", errors=[{"field": "user_id", "message": "not a member"}])
    current = (await session.scalars(select(Assignment).where(Assignment.walk_list_id == walk_list_id, Assignment.ended_at.is_(None)))).all()
    if len(current) == 1 and current[0].user_id == user_id and current[0].team_id is None:
        return (await list_outs(session, campaign_id, [walk_list_id]))[0]
    for assignment in current:
        assignment.ended_at = _now()
    session.add(Assignment(walk_list_id=walk_list_id, user_id=user_id, assigned_by=actor.id))
    walk_list.status = "assigned"
    await session.flush()
    await record_list_change(session, campaign_id, walk_list_id)
    return (await list_outs(session, campaign_id, [walk_list_id]))[0]


async def assign_list_to_team(session: AsyncSession, actor: AuthUser, campaign_id: int, walk_list_id: int, team_id: int) -> WalkListOut:
    """Give a list to a team: every member holds it (one assignment each, naming the team), ending any current holder's."""
    from server.accounts.teams import get_team, team_members

    walk_list = await get_list(session, campaign_id, walk_list_id)
    team = await get_team(session, campaign_id, team_id)
    members = await team_members(session, team.id)
    if not members:
        raise InvalidInput(f"Team {team.name!r} has no members yet: add some first.", errors=[{"field": "team_id", "message": "empty team"}])
    current = (await session.scalars(select(Assignment).where(Assignment.walk_list_id == walk_list_id, Assignment.ended_at.is_(None)))).all()
    if {a.user_id for a in current} == set(members) and all(a.team_id == team.id for a in current):
        return (await list_outs(session, campaign_id, [walk_list_id]))[0]
    for assignment in current:
        assignment.ended_at = _now()
    for user_id in members:
        session.add(Assignment(walk_list_id=walk_list_id, user_id=user_id, assigned_by=actor.id, team_id=team.id))
    walk_list.status = "assigned"
    await session.flush()
    await record_list_change(session, campaign_id, walk_list_id)
    return (await list_outs(session, campaign_id, [walk_list_id]))[0]


async def unassign_list(session: AsyncSession, campaign_id: int, walk_list_id: int) -> None:
    """Take a list back (phones get `remove`; their events already pushed are kept)."""
    walk_list = await get_list(session, campaign_id, walk_list_id)
    for assignment in (await session.scalars(select(Assignment).where(Assignment.walk_list_id == walk_list_id, Assignment.ended_at.is_(None)))).all():
        assignment.ended_at = _now()
    walk_list.status = "ready"
    await record_list_change(session, campaign_id, walk_list_id)


async def delete_list(session: AsyncSession, campaign_id: int, walk_list_id: int) -> None:
    """Delete a list, assigned or not: its holder's phone loses it, its stops and the doors only it brought; knocks and answers recorded on it are kept."""
    walk_list = await get_list(session, campaign_id, walk_list_id)
    held = (await session.scalars(select(Assignment).where(Assignment.walk_list_id == walk_list_id, Assignment.ended_at.is_(None)))).all()
    if held:
        await unassign_list(session, campaign_id, walk_list_id)  # the phone's next pull removes the list, as on reassignment
    await erase_stops(session, campaign_id, [walk_list_id])
    # Contact attempts, answers and result tallies name the list by id only (no foreign key), so they survive it.
    await session.delete(walk_list)
    await session.flush()


REKNOCK_OUTCOMES = ("not_home", "come_back")


async def reknock_lists(session: AsyncSession, campaign_id: int, walk_list_ids: Sequence[int], name: str | None = None) -> list[WalkList]:
    """New routed list(s) of the doors on these lists whose latest outcome is not_home or come_back (do-not-visit households left off)."""
    from server.db.models import ContactAttempt

    lists = [await get_list(session, campaign_id, i) for i in walk_list_ids]
    on_lists = set((await session.scalars(select(WalkListStop.address_id).where(WalkListStop.walk_list_id.in_(list(walk_list_ids))))).all())
    latest: dict[int, tuple[str, str]] = {}
    for address_id, outcome, hlc in (await session.execute(
        select(ContactAttempt.address_id, ContactAttempt.outcome, ContactAttempt.hlc)
        .where(ContactAttempt.campaign_id == campaign_id, ContactAttempt.address_id.in_(on_lists))
    )).all():
        if address_id not in latest or hlc > latest[address_id][0]:
            latest[address_id] = (hlc, outcome)
    blocked = set((await session.scalars(select(Flag.address_id).where(Flag.address_id.in_(on_lists), *_household_do_not_visit(campaign_id)))).all())
    wanted = sorted(a for a, (_, outcome) in latest.items() if outcome in REKNOCK_OUTCOMES and a not in blocked)
    if not wanted:
        raise InvalidInput("No door on these lists is waiting for a re-knock: none has not_home or come_back as its latest outcome.",
                           errors=[{"field": "walk_list_ids", "message": "no not_home or come_back doors"}])
    rows = (await session.execute(
        select(Address.id, Address.lon, Address.lat, Address.building_key, Address.street, Address.house_number, Address.flat)
        .where(Address.campaign_id == campaign_id, Address.id.in_(wanted))
    )).all()
    addresses = pd.DataFrame(rows, columns=["address_id", "lon", "lat", "building_key", "street", "house_number", "flat"])
    stops = stops_by_building(addresses)
    network = await street_network_for(session, campaign_id, stops.total_bounds)
    plans = await _route_stops(stops, network)
    base = name or f"{lists[0].name} re-knock"
    made = []
    for number, plan in enumerate(plans, start=1):
        walk_list = WalkList(campaign_id=campaign_id, target_id=lists[0].target_id, name=base if len(plans) == 1 else f"{base} ({number})", status="ready")
        session.add(walk_list)
        await session.flush()
        await _replace_stops(session, walk_list, plan, addresses, routing_of(network))
        await record_list_change(session, campaign_id, walk_list.id)
        made.append(walk_list)
    return made


async def rename_list(session: AsyncSession, campaign_id: int, walk_list_id: int, name: str) -> WalkListOut:
    """Rename a list."""
    walk_list = await get_list(session, campaign_id, walk_list_id)
    walk_list.name = name.strip()
    await record_list_change(session, campaign_id, walk_list_id)
    return (await list_outs(session, campaign_id, [walk_list_id]))[0]


async def _list_stops_frame(session: AsyncSession, walk_list_ids: Sequence[int]) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    rows = (
        await session.execute(
            select(WalkListStop.walk_list_id, Address.id, Address.lon, Address.lat, Address.building_key, Address.street, Address.house_number, Address.flat)
            .join(Address, Address.id == WalkListStop.address_id)
            .where(WalkListStop.walk_list_id.in_(list(walk_list_ids)))
        )
    ).all()
    frame = pd.DataFrame(rows, columns=["walk_list_id", "address_id", "lon", "lat", "building_key", "street", "house_number", "flat"])
    return stops_by_building(frame), frame


async def _replace_stops(session: AsyncSession, walk_list: WalkList, plan: WalkListPlan, addresses: pd.DataFrame, routing: str | None = None) -> None:
    from sqlalchemy import insert

    from server.sync.changes import change_row, record_changes

    # Phones holding the list drop the old stops and receive the new order.
    await erase_stops(session, walk_list.campaign_id, [walk_list.id])
    by_building = {key: sorted(group.itertuples(index=False), key=lambda r: (_natural_key(r.flat), r.address_id)) for key, group in addresses.groupby("building_key")}
    rows, position = [], 0
    for stop_number, building_key in enumerate(plan.stop_ids, start=1):
        for row in by_building[building_key]:
            position += 1
            rows.append({"walk_list_id": walk_list.id, "address_id": int(row.address_id), "stop_number": stop_number, "position": position})
    if rows:
        await session.execute(insert(WalkListStop), rows)
    await record_changes(session, [
        change_row(walk_list.campaign_id, "stop", stop_id, walk_list_id=walk_list.id)
        for stop_id in (await session.scalars(select(WalkListStop.id).where(WalkListStop.walk_list_id == walk_list.id))).all()
    ])
    walk_list.doors = int(plan.doors)
    walk_list.length_m = round(float(plan.length_m), 1)
    walk_list.minutes = round(float(plan.minutes), 1)
    walk_list.route = shapely.to_wkb(plan.route) if plan.route is not None and not plan.route.is_empty else None
    walk_list.size_exception = plan.size_exception
    walk_list.routing = routing


async def _route_stops(stops: gpd.GeoDataFrame, network: StreetNetwork | None) -> list[WalkListPlan]:
    """Order one group of stops as a single list (one plan per side of a major road, if it spans one)."""
    size = min(max(int(stops["doors"].sum()), 1), 500)
    try:
        return await asyncio.to_thread(cut_walk_lists, stops, size, "doors", network)
    except WalkListError as exc:
        raise InvalidInput(str(exc)) from exc


async def _stop_order(session: AsyncSession, walk_list_ids: Sequence[int]) -> list[str]:
    """Building keys in the lists' current walking order (list by list)."""
    rows = (
        await session.execute(
            select(WalkListStop.walk_list_id, WalkListStop.position, Address.building_key)
            .join(Address, Address.id == WalkListStop.address_id)
            .where(WalkListStop.walk_list_id.in_(list(walk_list_ids)))
        )
    ).all()
    rank = {list_id: i for i, list_id in enumerate(walk_list_ids)}
    ordered: list[str] = []
    for _, _, key in sorted(rows, key=lambda r: (rank[r[0]], r[1])):
        if key not in ordered:
            ordered.append(key)
    return ordered


async def reroute_lists(session: AsyncSession, campaign_id: int, walk_list_ids: Sequence[int], parts: int = 1) -> list[WalkList]:
    """Re-route lists as one (merge, or re-order with one id), or split one into `parts` along its walking order."""
    lists = [await get_list(session, campaign_id, i) for i in walk_list_ids]
    stops, addresses = await _list_stops_frame(session, walk_list_ids)
    if stops.empty:
        raise InvalidInput("These lists have no stops.")
    network = await street_network_for(session, campaign_id, stops.total_bounds)
    if parts > 1:
        # Cut the current route into `parts` runs of about equal doors (never splitting a building), then route each.
        order = await _stop_order(session, walk_list_ids)
        by_key = stops.set_index("stop_id")
        doors = by_key.loc[order, "doors"].to_numpy()
        bounds = np.searchsorted(np.cumsum(doors), [doors.sum() * k / parts for k in range(1, parts)], side="left")
        chunks = [c for c in np.split(np.array(order, dtype=object), np.unique(bounds + 1)) if len(c)]
        if len(chunks) < 2:
            raise InvalidInput("This list is a single building and cannot be split.", errors=[{"field": "parts", "message": "cannot split"}])
        plans = []
        for chunk in chunks:
            plans += await _route_stops(stops[stops["stop_id"].isin(set(chunk))], network)
    else:
        plans = await _route_stops(stops, network)
    first = lists[0]
    kept = [first]
    routing = routing_of(network)
    await _replace_stops(session, first, plans[0], addresses, routing)
    for extra_plan in plans[1:]:
        extra = WalkList(campaign_id=campaign_id, target_id=first.target_id, name=f"{first.name} ({len(kept) + 1})", status="ready")
        session.add(extra)
        await session.flush()
        await _replace_stops(session, extra, extra_plan, addresses, routing)
        kept.append(extra)
    for other in lists[1:]:
        await delete_list(session, campaign_id, other.id)
    await session.flush()
    for walk_list in kept:
        await record_list_change(session, campaign_id, walk_list.id)
    return kept


# ------------------------------------------------------------------ exports


async def export_geojson(session: AsyncSession, user: AuthUser, campaign_id: int, walk_list_id: int) -> dict[str, Any]:
    """Stops (with addresses, no names) and the route of one list, for QGIS or a phone."""
    detail = await list_detail(session, user, campaign_id, walk_list_id)
    features: list[dict[str, Any]] = []
    if detail.route:
        features.append({"type": "Feature", "geometry": detail.route, "properties": {"kind": "route", "walk_list_id": walk_list_id,
                         "length_m": detail.summary.length_m, "minutes": detail.summary.minutes}})
    for stop in detail.stops:
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [stop.lon, stop.lat]},
                         "properties": {"kind": "stop", "position": stop.position, "stop_number": stop.stop_number, "address_id": stop.address_id,
                                        "address": stop.address, "postcode": stop.postcode, "electors": len(stop.people), "do_not_visit": stop.do_not_visit}})
    record_audit(session, user, "export", f"walk_list:{walk_list_id}.geojson", campaign_id=campaign_id, row_count=len(detail.stops))
    return {"type": "FeatureCollection", "features": features}


async def export_gpx(session: AsyncSession, user: AuthUser, campaign_id: int, walk_list_id: int) -> str:
    """The route as a GPX track and one waypoint per stop (doors, no names), for a GPS or a walking app."""
    import gpxpy.gpx

    detail = await list_detail(session, user, campaign_id, walk_list_id)
    gpx = gpxpy.gpx.GPX()
    gpx.name = detail.summary.name
    gpx.creator = "Canvass"
    by_stop: dict[int, list[StopOut]] = {}
    for stop in detail.stops:
        by_stop.setdefault(stop.stop_number, []).append(stop)
    for number, doors in sorted(by_stop.items()):
        first = doors[0]
        skip = " (do not knock)" if all(d.do_not_visit for d in doors) else ""
        gpx.waypoints.append(gpxpy.gpx.GPXWaypoint(
            latitude=first.lat, longitude=first.lon, name=f"{number}. {first.address}{skip}",
            description="; ".join(d.address for d in doors) if len(doors) > 1 else None, symbol="Residence",
        ))
    if detail.route and detail.route["type"] in ("LineString", "MultiLineString"):
        lines = [detail.route["coordinates"]] if detail.route["type"] == "LineString" else detail.route["coordinates"]
        track = gpxpy.gpx.GPXTrack(name=detail.summary.name)
        for line in lines:
            track.segments.append(gpxpy.gpx.GPXTrackSegment([gpxpy.gpx.GPXTrackPoint(latitude=lat, longitude=lon) for lon, lat in line]))
        gpx.tracks.append(track)
    record_audit(session, user, "export", f"walk_list:{walk_list_id}.gpx", campaign_id=campaign_id, row_count=len(detail.stops))
    return gpx.to_xml()


async def export_csv(session: AsyncSession, user: AuthUser, campaign_id: int, walk_list_id: int) -> str:
    """One row per elector (or per empty door) in walking order, with names and elector numbers."""
    detail = await list_detail(session, user, campaign_id, walk_list_id)
    rows = [
        [
            stop.position, stop.stop_number, stop.address_id, stop.address, stop.postcode,
            person.id if person else "", person.name if person else "", person.polling_district if person else "",
            f"{person.elector_number}{person.elector_suffix and '/' + person.elector_suffix}" if person and person.elector_number is not None else "",
            "yes" if stop.do_not_visit else "",
        ]
        for stop in detail.stops
        for person in stop.people or [None]
    ]
    record_audit(session, user, "export", f"walk_list:{walk_list_id}.csv", campaign_id=campaign_id, row_count=len(rows))
    header = ["position", "stop", "address_id", "address", "postcode", "person_id", "name", "polling_district", "elector_number", "do_not_visit"]
    return csv_text(header, rows)


async def _sheet_rows(session: AsyncSession, campaign_id: int, detail: WalkListDetail) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The walk sheet's door rows (in walking order, flats with their building) and the active survey's questions.

    One source for the printed sheet and the paper key-in form, so the form follows the sheet's door order.
    """
    survey = await session.scalar(select(Survey).where(Survey.campaign_id == campaign_id, Survey.is_active.is_(True)).order_by(Survey.version.desc()))
    questions = [{"key": q.get("key"), "text": q.get("text", ""), "kind": q.get("kind", "text"), "options": list(q.get("options", []))}
                 for q in (survey.questions if survey else [])]
    flats = dict((await session.execute(
        select(Address.id, Address.flat).where(Address.id.in_([s.address_id for s in detail.stops]))
    )).all()) if detail.stops else {}
    rows = []
    for s in detail.stops:
        flat = flats.get(s.address_id)
        building = s.address[len(flat) + 2:] if flat and s.address.startswith(f"{flat}, ") else s.address
        rows.append({
            "stop": s.stop_number, "address_id": s.address_id, "address": s.address, "building": building, "flat": flat, "skip": s.skip,
            "notes": "do not visit one of the electors" if s.do_not_visit and not s.skip else "",
            "people": [{"name": p.name, "elector_number": f"{p.polling_district}-{p.elector_number}{p.elector_suffix and '/' + p.elector_suffix}"} for p in s.people],
        })
    return rows, questions


async def export_pdf(session: AsyncSession, user: AuthUser, campaign_id: int, walk_list_id: int, public_url: str) -> bytes:
    """A printable walk sheet: map from our geometries, doors in order with names, tick boxes, survey, QR code."""
    from geo.walksheet import render_walk_sheet_pdf

    detail = await list_detail(session, user, campaign_id, walk_list_id)
    rows, questions = await _sheet_rows(session, campaign_id, detail)
    points: dict[int, list[tuple[float, float]]] = {}
    for s in detail.stops:
        points.setdefault(s.stop_number, []).append((s.lon, s.lat))
    stop_points = [tuple(np.mean(points[n], axis=0)) for n in sorted(points)]
    route = detail.route["coordinates"] if detail.route and detail.route["type"] == "LineString" else []
    lons = [p[0] for p in route] + [p[0] for p in stop_points]
    lats = [p[1] for p in route] + [p[1] for p in stop_points]
    streets = await streets_near(session, campaign_id, (min(lons), min(lats), max(lons), max(lats))) if lons else []
    pdf = await asyncio.to_thread(
        render_walk_sheet_pdf,
        {"title": detail.summary.name, "list_id": walk_list_id, "doors": detail.summary.doors, "length_m": detail.summary.length_m, "minutes": detail.summary.minutes,
         "date": _now().date().isoformat()},
        rows, questions, route, stop_points, f"{public_url}/app/#/list/{walk_list_id}", True, streets,
    )
    record_audit(session, user, "export", f"walk_list:{walk_list_id}.pdf", campaign_id=campaign_id, row_count=sum(len(s.people) for s in detail.stops))
    return pdf


# ------------------------------------------------------------------ paper results


async def paper_form(session: AsyncSession, user: AuthUser, campaign_id: int, walk_list_id: int) -> PaperForm:
    """The key-in form of a list's walk sheet: the same rows, codes and answer boxes as the printed sheet (an audited read: it names the electors)."""
    from geo.walksheet import OUTCOME_CODES, PAPER_OUTCOMES, door_table, short_answer_questions

    detail = await list_detail(session, user, campaign_id, walk_list_id)
    rows, questions = await _sheet_rows(session, campaign_id, detail)
    short = short_answer_questions(questions)
    return PaperForm(
        summary=detail.summary,
        outcomes=[PaperCode(code=code, outcome=PAPER_OUTCOMES[code], label=label) for code, label in OUTCOME_CODES],
        questions=[PaperQuestion(label=c.label, key=c.key, text=c.text, hint=c.hint, entries=dict(c.entries) if c.entries is not None else None) for c in short],
        rows=[PaperRow(kind="building" if r.kind == "building" else "door", number=r.number, address=r.address, address_id=r.address_id, skip=r.skip,
                       people=[str(p.get("name", "")) for p in r.people], notes=r.notes) for r in door_table(rows, short)],
    )



async def key_paper_results(session: AsyncSession, user: AuthUser, campaign_id: int, walk_list_id: int, data: PaperResults, max_skew_ms: int) -> PaperResultsOut:
    """Apply results keyed from a paper sheet through the phones' push path (events insert-if-absent).

    With a `sheet_id` the event ids are derived from it, so keying the same sheet twice adds nothing.
    """
    from server.sync.store import apply_mutations, organiser_device, push_context_for
    from sync.clock import HybridClock
    from sync.protocol import RecordAnswer, RecordContactAttempt

    await get_list(session, campaign_id, walk_list_id)
    on_list = set((await session.scalars(select(WalkListStop.address_id).where(WalkListStop.walk_list_id == walk_list_id))).all())
    device = await organiser_device(session, user.id, campaign_id, "paper entry")
    context = await push_context_for(session, device.id, user.id, user.role_in(campaign_id) or (Role.admin if user.is_superuser else None), max_skew_ms)
    clock = HybridClock(device.node_id)
    mutations: list[Any] = []
    rejected: list[dict[str, Any]] = []
    sheet = data.sheet_id or uuid.uuid4().hex

    def event_id(*parts: object) -> uuid.UUID:
        return uuid.uuid5(PAPER_NAMESPACE, ":".join(str(p) for p in (campaign_id, walk_list_id, sheet, *parts)))

    for index, entry in enumerate(data.entries):
        if entry.address_id not in on_list:
            rejected.append({"index": index, "address_id": entry.address_id, "reason": "address is not on this walk list"})
            continue
        stamp = clock.now().encode()
        mutations.append(RecordContactAttempt(id=event_id(index, "attempt"), address_id=entry.address_id, outcome=entry.outcome, at=stamp,
                                              person_id=entry.person_id, walk_list_id=walk_list_id))
        for key, value in sorted(entry.answers.items()):
            mutations.append(RecordAnswer(id=event_id(index, "answer", key), address_id=entry.address_id, question_key=key, value=value,
                                          at=clock.now().encode(), person_id=entry.person_id))
    applied = duplicates = 0
    if mutations:
        response = await apply_mutations(session, context, mutations)
        for result in response.results:
            if result.status == "applied":
                applied += 1
            elif result.status == "duplicate":
                duplicates += 1
            elif result.status == "rejected":
                rejected.append({"seq": result.seq, "reason": result.reason})
    record_audit(session, user, "write", f"walk_list:{walk_list_id}:paper", campaign_id=campaign_id, row_count=len(data.entries), detail={"sheet": sheet})
    return PaperResultsOut(applied=applied, duplicates=duplicates, rejected=rejected)


# ------------------------------------------------------------------ jobs


async def record_finished_cut(session: AsyncSession, campaign_id: int, target_id: int, user_id: int | None, lists: Sequence[WalkList]) -> JobOut:
    """Record a cut that ran to the end in the request (`wait=true`) as a finished job, so it reads like a background one."""
    result = {"target_id": target_id, **cut_result(lists)}
    job = ImportJob(campaign_id=campaign_id, kind="cut", status="done", created_by=user_id, result=result, done=len(lists), total=len(lists),
                    message=f"{len(lists)} lists cut", finished_at=_now())
    session.add(job)
    await session.flush()
    return job_out(job)


def job_out(job: ImportJob) -> JobOut:
    """Struct for a job row."""
    result = job.result or {}
    return JobOut(id=job.id, kind=job.kind, status=job.status, done=job.done, total=job.total, message=job.message, result=result,
                  routing=result.get("routing"), warnings=list(result.get("warnings") or []))


class RetryJob(Exception):
    """A job attempt failed for a reason a later attempt may not meet (the queue runs it again)."""


async def run_cut_job(
    sessionmaker: Any, job_id: int, campaign_id: int, target_id: int, request: CutRequest, retry_on_error: bool = False
) -> None:
    """Run a cut job, writing progress to the job row; the lists and the job's "done" commit together.

    Idempotent per job: the lists are written in the same transaction that marks the job
    done, under a lock on the job row, and an attempt that finds its job already done
    writes nothing. So a job the queue runs again (its worker was killed, or an attempt
    failed) completes once, with no duplicate lists. A refusal (no such target, no doors,
    an impossible size) fails the job for good; any other error fails it too unless
    `retry_on_error` (the durable queue's attempts left), when the job is put back to
    "queued" and `RetryJob` is raised for the queue to run it again.
    """
    loop = asyncio.get_running_loop()
    progress_state = {"done": 0, "total": 0}

    def progress(done: int, total: int) -> None:
        progress_state.update(done=done, total=total)

    finished = asyncio.Event()

    async def report() -> None:
        # Stops at the next tick after `finished` is set: never cancelled in the middle of a query,
        # which could leave a connection (and the app's shutdown) waiting.
        while True:
            try:
                await asyncio.wait_for(finished.wait(), timeout=0.5)
                return
            except TimeoutError:
                pass
            async with sessionmaker() as session:
                job = await session.get(ImportJob, job_id)
                if job is None or job.status != "running":
                    return
                job.done, job.total = progress_state["done"], progress_state["total"] or None
                await session.commit()

    async with sessionmaker() as session:
        job = await session.get(ImportJob, job_id)
        if job is None or job.status in ("done", "failed"):
            return  # deleted, or finished by an earlier attempt: nothing to do
        job.status, job.message = "running", ""
        await session.commit()
    reporter = loop.create_task(report())
    lists: list[WalkList] | None = None
    try:
        async with sessionmaker() as session:
            cut = await prepare_cut(session, campaign_id, target_id)
            await session.rollback()
        plans = await plan_cut(cut, request, progress)
        finished.set()
        await reporter
        async with sessionmaker() as session:
            job = (await session.scalars(select(ImportJob).where(ImportJob.id == job_id).with_for_update())).first()
            if job is None or job.status in ("done", "failed"):
                return  # another attempt finished it while this one was cutting
            lists = await store_cut(session, campaign_id, target_id, cut, plans, request.replace)
            result = {"target_id": target_id, **cut_result(lists)}
            job.status, job.message, job.result, job.finished_at = "done", f"{len(lists)} lists cut", result, _now()
            job.done = job.total = progress_state["total"] or len(lists)
            await session.commit()
        return
    except DomainError as exc:
        status, message = "failed", exc.detail
    except Exception as exc:
        logger.exception("cut job %s failed", job_id)
        status, message = ("queued", f"attempt failed ({exc.__class__.__name__}: {exc}); retrying") if retry_on_error \
            else ("failed", f"{exc.__class__.__name__}: {exc}")
    finally:
        finished.set()
        if not reporter.done():
            await reporter
    async with sessionmaker() as session:
        job = await session.get(ImportJob, job_id)
        if job is not None and job.status not in ("done", "failed"):
            job.status, job.message = status, message
            if status == "failed":
                job.result, job.finished_at = {}, _now()
            await session.commit()
    if status == "queued":
        raise RetryJob(message)


def json_dumps(value: Any) -> str:
    """Compact JSON for GeoJSON downloads."""
    return json.dumps(value, separators=(",", ":"))
