"""The street layer: the campaign's imported streets and building outlines as simplified GeoJSON,
for maps with no tile server.

The canvasser app asks for the layer around one walk list (with the list's route); the console
can ask for a bounding box (its view). Features carry ``properties.kind``: ``street`` (with
``name``, ``highway``), ``building`` (with ``building``, the OSM value) and ``route``. Buildings
are left out of a bbox wider than ``MAX_BUILDING_BBOX_DEG`` (the collection then says
``"buildings": "zoom_in"``; else ``"included"``) or when ``buildings=false``; at most
``MAX_BUILDINGS``. Geometry is not personal data. Answers are cached in-process (plain and
gzip), keyed by campaign, request and the campaign's street and building counts and last ids (a
new import changes them).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import shapely
from shapely.geometry import mapping
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.security import AuthUser
from server.db.models import Address, Assignment, Building, Role, Street, WalkList, WalkListStop
from server.errors import Forbidden, InvalidInput, NotFound

MARGIN_DEG = 0.0015
"""About 150 m of streets around a list's doors, so the walk to the first door is on the map."""
SIMPLIFY_DEG = 0.00001
"""About 1 m: invisible at street zoom, and drops most vertices of OSM ways."""
MAX_BBOX_DEG = 0.2
MAX_STREETS = 5000
HIGHWAY_RANK = {kind: rank for rank, kinds in enumerate((
    ("motorway", "trunk", "motorway_link", "trunk_link"), ("primary", "primary_link"), ("secondary", "secondary_link"),
    ("tertiary", "tertiary_link"), ("residential", "unclassified", "living_street"), ("pedestrian", "road"),
)) for kind in kinds}
"""A view with more than ``MAX_STREETS`` streets keeps the most important first (OSM ``highway``
classes), then the rest by id, and answers ``"streets": "major_first"``: a borough view shows its
main roads, never an arbitrary subset; zooming in gives every street (``"all"``)."""
MAX_BUILDINGS = 8000
MAX_BUILDING_BBOX_DEG = 0.05
"""About 3.5 x 5.5 km in London: wider views get streets only (zoom in for buildings)."""
_CACHE: OrderedDict[tuple[Any, ...], tuple[bytes, bytes]] = OrderedDict()
_CACHE_SIZE = 64


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``min_lon,min_lat,max_lon,max_lat`` as floats; ``InvalidInput`` for anything else or too large."""
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError as exc:
        raise InvalidInput("bbox must be four numbers: min_lon,min_lat,max_lon,max_lat.") from exc
    if len(parts) != 4 or not (parts[0] < parts[2] and parts[1] < parts[3]):
        raise InvalidInput("bbox must be four numbers: min_lon,min_lat,max_lon,max_lat, min before max.")
    if not all(abs(v) <= 180 for v in parts) or parts[2] - parts[0] > MAX_BBOX_DEG or parts[3] - parts[1] > MAX_BBOX_DEG:
        raise InvalidInput(f"bbox must be within {MAX_BBOX_DEG} degrees on a side.")
    return parts[0], parts[1], parts[2], parts[3]


async def _list_bounds(session: AsyncSession, user: AuthUser, campaign_id: int, walk_list_id: int) -> tuple[WalkList, tuple[float, float, float, float]]:
    walk_list = await session.get(WalkList, walk_list_id)
    if walk_list is None or walk_list.campaign_id != campaign_id:
        raise NotFound(f"No walk list {walk_list_id} in this campaign.")
    role = user.role_in(campaign_id)
    if not user.is_superuser and role not in (Role.admin, Role.organiser, Role.lead):
        held = await session.scalar(
            select(Assignment.id).where(Assignment.walk_list_id == walk_list_id, Assignment.user_id == user.id, Assignment.ended_at.is_(None))
        )
        if held is None:
            raise Forbidden("This walk list is not assigned to you.")
    row = (
        await session.execute(
            select(func.min(Address.lon), func.min(Address.lat), func.max(Address.lon), func.max(Address.lat))
            .join(WalkListStop, WalkListStop.address_id == Address.id)
            .where(WalkListStop.walk_list_id == walk_list_id)
        )
    ).one()
    if row[0] is None:
        raise NotFound(f"Walk list {walk_list_id} has no doors.")
    return walk_list, (row[0] - MARGIN_DEG, row[1] - MARGIN_DEG, row[2] + MARGIN_DEG, row[3] + MARGIN_DEG)


async def _layer_version(session: AsyncSession, campaign_id: int) -> tuple[Any, ...]:
    """What changes when streets or buildings are imported again (part of the cache key)."""
    out: list[Any] = []
    for model in (Street, Building):
        row = (await session.execute(select(func.count(), func.max(model.id)).where(model.campaign_id == campaign_id))).one()
        out += [row[0], row[1]]
    return tuple(out)


def _features(rows: list[Any], properties: Any, *, polygons: bool = False, view: Any = None) -> list[dict[str, Any]]:
    """Simplified GeoJSON features (outlines keep their topology, so they stay valid polygons);
    with ``view``, only those that meet it (the query matched bounding boxes)."""
    if not rows:
        return []
    geoms = shapely.from_wkb([r.geometry for r in rows])
    if view is not None:
        keep = shapely.intersects(geoms, view)
        rows = [r for r, k in zip(rows, keep, strict=True) if k]
        geoms = geoms[keep]
    geoms = shapely.simplify(geoms, SIMPLIFY_DEG, preserve_topology=polygons)
    geoms = shapely.set_precision(geoms, 0.000001)
    return [
        {"type": "Feature", "geometry": mapping(geom), "properties": properties(row)}
        for row, geom in zip(rows, geoms, strict=True)
        if geom is not None and not geom.is_empty
    ]


async def street_layer(
    session: AsyncSession, user: AuthUser, campaign_id: int, walk_list_id: int | None, bbox: str | None,
    *, buildings: bool = True,
) -> tuple[bytes, bytes]:
    """GeoJSON FeatureCollection of streets and buildings in a list's surroundings or a bbox, plus
    the list's route: (the bytes, the same gzip-compressed)."""
    import gzip

    import msgspec

    if (walk_list_id is None) == (bbox is None):
        raise InvalidInput("Give either walk_list_id or bbox.")
    route: bytes | None = None
    if walk_list_id is not None:
        walk_list, bounds = await _list_bounds(session, user, campaign_id, walk_list_id)
        route = walk_list.route
        key: tuple[Any, ...] = (campaign_id, "list", walk_list_id, walk_list.updated_at)
    else:
        bounds = parse_bbox(bbox or "")
        key = (campaign_id, "bbox", bounds)
    min_lon, min_lat, max_lon, max_lat = bounds
    narrow = max_lon - min_lon <= MAX_BUILDING_BBOX_DEG and max_lat - min_lat <= MAX_BUILDING_BBOX_DEG
    with_buildings = buildings and (walk_list_id is not None or narrow)
    key = (*key, with_buildings, *(await _layer_version(session, campaign_id)))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]

    def within(model: Any) -> list[Any]:
        return [model.campaign_id == campaign_id, model.max_lon >= min_lon, model.min_lon <= max_lon,
                model.max_lat >= min_lat, model.min_lat <= max_lat]

    streets = (
        await session.execute(
            select(Street.name, Street.highway, Street.geometry).where(*within(Street))
            .order_by(case(HIGHWAY_RANK, value=Street.highway, else_=len(HIGHWAY_RANK)), Street.id)
            .limit(MAX_STREETS + 1)
        )
    ).all()
    partial = len(streets) > MAX_STREETS
    streets = streets[:MAX_STREETS]
    features = _features(streets, lambda r: {"kind": "street", "name": r.name, "highway": r.highway})
    if with_buildings:
        outlines = (
            await session.execute(
                select(Building.building, Building.geometry).where(*within(Building)).order_by(Building.id).limit(MAX_BUILDINGS)
            )
        ).all()
        features += _features(outlines, lambda r: {"kind": "building", "building": r.building}, polygons=True,
                              view=shapely.box(*bounds))
    if route:
        features.append({"type": "Feature", "geometry": mapping(shapely.set_precision(shapely.from_wkb(route), 0.000001)), "properties": {"kind": "route"}})
    body = msgspec.json.encode({
        "type": "FeatureCollection", "bbox": list(bounds), "buildings": "included" if with_buildings else "zoom_in",
        "streets": "major_first" if partial else "all",
        "features": features,
    })
    answer = (body, gzip.compress(body, compresslevel=6, mtime=0))
    _CACHE[key] = answer
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return answer
