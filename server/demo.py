"""Load the synthetic demo town from `fixtures/` into a campaign, with one login per role."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import shapely
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from fixtures.town import Town, generate_town
from server.accounts.security import hash_password
from server.campaigns.schemas import CampaignCreate
from server.campaigns.services import create_campaign
from server.db.models import (
    Address,
    Campaign,
    CampaignArea,
    CensusArea,
    Membership,
    Person,
    Role,
    Survey,
    User,
)
from server.surveys.rules import validate_questions

DEMO_SLUG = "demo-town"
DEMO_PASSWORD = "canvass-demo"
DEMO_USERS = (
    ("admin@demo.canvass", "Ada Admin", Role.admin),
    ("organiser@demo.canvass", "Olu Organiser", Role.organiser),
    ("lead@demo.canvass", "Lee Lead", Role.lead),
    ("canvasser@demo.canvass", "Cam Canvasser", Role.canvasser),
    ("canvasser2@demo.canvass", "Kit Canvasser", Role.canvasser),
)


class DemoSummary(msgspec.Struct):
    """What the demo load created (or found already there)."""

    campaign_id: int
    created: bool
    areas: int
    addresses: int
    people: int
    logins: list[tuple[str, str, str]]


async def load_demo(
    session: AsyncSession, town: Town | None = None, progress: Callable[[str], None] | None = None
) -> DemoSummary:
    """Create the demo campaign from the synthetic town unless it already exists (idempotent)."""
    say = progress or (lambda _msg: None)
    logins = [(email, DEMO_PASSWORD, role.value) for email, _name, role in DEMO_USERS]
    existing = await session.scalar(select(Campaign).where(Campaign.slug == DEMO_SLUG))
    if existing is not None:
        return DemoSummary(campaign_id=existing.id, created=False, areas=0, addresses=0, people=0, logins=logins)
    town = town or generate_town()
    say(f"generating {town.name}: {len(town.areas)} areas, {len(town.addresses)} addresses, {len(town.electors)} electors")
    campaign = await create_campaign(session, CampaignCreate(name=f"{town.name} (demo)", slug=DEMO_SLUG), None)
    password_hash = hash_password(DEMO_PASSWORD)
    for email, name, role in DEMO_USERS:
        user = await session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, display_name=name, password_hash=password_hash, is_superuser=role == Role.admin)
            session.add(user)
            await session.flush()
        session.add(Membership(user_id=user.id, campaign_id=campaign.id, role=role))
    await session.flush()
    area_count = await load_town_geography(session, campaign.id, town)
    say(f"loaded {area_count} census areas")
    address_ids = await load_town_addresses(session, campaign.id, town)
    say(f"loaded {len(address_ids)} addresses")
    people = await load_town_register(session, campaign.id, town, address_ids)
    say(f"loaded {people} electors")
    from fixtures.town import town_streets_gdf
    from server.walklists.services import store_streets

    streets = await store_streets(session, campaign.id, town_streets_gdf(town), "demo")
    say(f"loaded {streets} street segments")
    from fixtures.town import town_buildings_gdf
    from server.geography.services import store_buildings

    buildings = await store_buildings(session, campaign.id, town_buildings_gdf(town), "demo")
    say(f"loaded {buildings} building outlines")
    questions = [msgspec.structs.asdict(q) if isinstance(q, msgspec.Struct) else _question_dict(q) for q in town.survey.questions]
    validate_questions(questions)  # the survey rules: known kinds, no special category question
    session.add(Survey(campaign_id=campaign.id, name=town.survey.name, version=1, questions=questions))
    await session.flush()
    return DemoSummary(
        campaign_id=campaign.id, created=True, areas=area_count, addresses=len(address_ids), people=people, logins=logins
    )


def _question_dict(question: object) -> dict[str, object]:
    return {
        "key": question.key,  # type: ignore[attr-defined]
        "text": question.text,  # type: ignore[attr-defined]
        "kind": question.kind,  # type: ignore[attr-defined]
        "options": list(question.options),  # type: ignore[attr-defined]
    }


async def load_town_geography(session: AsyncSession, campaign_id: int, town: Town) -> int:
    """Insert the town's census areas (WKB + bbox + counts) and link them to the campaign."""
    rows = []
    for area in town.areas:
        minx, miny, maxx, maxy = area.geometry.bounds
        rows.append(
            {
                "code": area.code,
                "name": area.name,
                "kind": area.kind,
                "vintage": 2011,
                "geometry": shapely.to_wkb(area.geometry),
                "min_lon": minx,
                "min_lat": miny,
                "max_lon": maxx,
                "max_lat": maxy,
                "population": int(area.counts.get("total", 0)),
                "census_table": "KS201EW",
                "counts": dict(area.counts),
            }
        )
    own = (CensusArea.campaign_id == campaign_id, CensusArea.code.in_([r["code"] for r in rows]))
    existing = set((await session.scalars(select(CensusArea.code).where(*own))).all())
    new_rows = [{"campaign_id": campaign_id, **r} for r in rows if r["code"] not in existing]
    if new_rows:
        await session.execute(insert(CensusArea), new_rows)
    ids = (await session.scalars(select(CensusArea.id).where(*own))).all()
    await session.execute(insert(CampaignArea), [{"campaign_id": campaign_id, "area_id": i} for i in ids])
    return len(ids)


async def load_town_addresses(session: AsyncSession, campaign_id: int, town: Town) -> dict[str, int]:
    """Insert the town's addresses with their census area; returns UPRN -> address id."""
    polygons = [a.geometry for a in town.areas]
    tree = shapely.STRtree(polygons)
    points = shapely.points([a.lon for a in town.addresses], [a.lat for a in town.addresses])
    point_idx, poly_idx = tree.query(points, predicate="intersects")
    area_of = {int(p): town.areas[int(a)].code for p, a in zip(point_idx, poly_idx, strict=True)}
    rows = [
        {
            "campaign_id": campaign_id,
            "uprn": a.uprn,
            "lines": list(a.lines),
            "postcode": a.postcode,
            "lon": a.lon,
            "lat": a.lat,
            "building_key": a.building_key,
            "street": a.street,
            "house_number": a.house_number,
            "flat": a.flat,
            "area_code": area_of.get(i),
            "source": "demo",
        }
        for i, a in enumerate(town.addresses)
    ]
    for start in range(0, len(rows), 1000):
        await session.execute(insert(Address), rows[start : start + 1000])
    result = await session.execute(select(Address.uprn, Address.id).where(Address.campaign_id == campaign_id))
    return {uprn: address_id for uprn, address_id in result.all() if uprn}


async def load_town_register(session: AsyncSession, campaign_id: int, town: Town, address_ids: dict[str, int]) -> int:
    """Insert the town's electors, matched to addresses by UPRN."""
    rows = [
        {
            "campaign_id": campaign_id,
            "address_id": address_ids.get(e.uprn),
            "polling_district": e.polling_district,
            "elector_number": e.elector_number,
            "elector_suffix": e.suffix,
            "surname": e.surname,
            "forenames": e.forenames,
            "match": "uprn" if e.uprn in address_ids else "unmatched",
        }
        for e in town.electors
    ]
    for start in range(0, len(rows), 1000):
        await session.execute(insert(Person), rows[start : start + 1000])
    return len(rows)
