"""Walkable street network for walk lists: reading, snapping, distances, barrier regions.

Inputs are WGS84 lon/lat (EPSG:4326); everything inside is EPSG:27700 (British National
Grid) so every distance is in metres. Major roads (trunk, primary, secondary and their
links) are walkable along their pavements but are barriers: the plane is split into
`regions` by them and a walk list never mixes regions.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString, box
from shapely.ops import polygonize, unary_union

WGS84 = "EPSG:4326"
BNG = "EPSG:27700"

MAJOR_HIGHWAYS = frozenset(
    {"trunk", "trunk_link", "primary", "primary_link", "secondary", "secondary_link"}
)
BUSY_HIGHWAYS = frozenset({"tertiary", "tertiary_link"})
WALKABLE_HIGHWAYS = (
    frozenset(
        {
            "footway",
            "path",
            "pedestrian",
            "residential",
            "living_street",
            "service",
            "unclassified",
            "tertiary",
            "tertiary_link",
            "steps",
            "cycleway",
            "track",
            "bridleway",
            "road",
            "corridor",
            "crossing",
        }
    )
    | MAJOR_HIGHWAYS
)
NO_FOOT_ACCESS = frozenset({"no", "private"})
EXTEND_TO_FRAME_M = 300.0

_to_bng = Transformer.from_crs(WGS84, BNG, always_xy=True)
_to_wgs = Transformer.from_crs(BNG, WGS84, always_xy=True)


def lonlat_to_bng(lonlat: np.ndarray) -> np.ndarray:
    """Project (n, 2) WGS84 lon/lat to (n, 2) EPSG:27700 metres."""
    a = np.asarray(lonlat, dtype=float).reshape(-1, 2)
    x, y = _to_bng.transform(a[:, 0], a[:, 1])
    return np.column_stack([x, y])


def bng_to_lonlat(xy: np.ndarray) -> np.ndarray:
    """Project (n, 2) EPSG:27700 metres back to WGS84 lon/lat."""
    a = np.asarray(xy, dtype=float).reshape(-1, 2)
    lon, lat = _to_wgs.transform(a[:, 0], a[:, 1])
    return np.column_stack([lon, lat])


class StreetNetworkError(ValueError):
    """Raised when a street network cannot be built from the given input."""


@dataclass(eq=False)
class StreetNetwork:
    """A walkable street graph in EPSG:27700 metres.

    Each edge is one straight segment between consecutive way vertices; `graph` is a
    symmetric CSR matrix of edge lengths. `regions` are the polygons the major roads
    cut the network's extent into.
    """

    node_xy: np.ndarray  # (N, 2) float, EPSG:27700
    graph: sparse.csr_array  # (N, N) metres, symmetric
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length: np.ndarray
    edge_major: np.ndarray  # bool
    edge_busy: np.ndarray  # bool (tertiary: busy but crossable; one side then the other)
    edge_name: np.ndarray  # object
    edge_lines: np.ndarray  # shapely LineStrings (EPSG:27700)
    edge_tree: shapely.STRtree
    major_lines: np.ndarray
    major_tree: shapely.STRtree
    busy_lines: np.ndarray
    busy_tree: shapely.STRtree
    regions: np.ndarray  # shapely Polygons (EPSG:27700)
    region_tree: shapely.STRtree
    extent: tuple[float, float, float, float] = field(default=(0.0, 0.0, 0.0, 0.0))

    @property
    def n_nodes(self) -> int:
        """Number of graph nodes."""
        return int(self.node_xy.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of (undirected) graph edges."""
        return int(self.edge_u.shape[0])


@dataclass(frozen=True)
class SnappedPoints:
    """Points snapped onto their nearest edge: distance to each end of that edge."""

    edge: np.ndarray  # (k,) edge index
    offset_m: np.ndarray  # (k,) perpendicular distance from the point to the edge
    to_u_m: np.ndarray  # (k,) along-edge distance from the snap point to edge_u
    to_v_m: np.ndarray  # (k,) along-edge distance from the snap point to edge_v
    snapped_xy: np.ndarray  # (k, 2) the foot of the perpendicular


def _tree(geoms: np.ndarray) -> shapely.STRtree:
    return shapely.STRtree(geoms)


def _build_network(
    lines_xy: Sequence[np.ndarray], highways: Sequence[str], names: Sequence[str]
) -> StreetNetwork:
    """Build the graph from polylines already in EPSG:27700 (one array (k, 2) per way)."""
    seg_a: list[np.ndarray] = []
    seg_b: list[np.ndarray] = []
    seg_hw: list[np.ndarray] = []
    seg_way: list[np.ndarray] = []
    for i, coords in enumerate(lines_xy):
        c = np.asarray(coords, dtype=float)
        if c.shape[0] < 2:
            continue
        seg_a.append(c[:-1])
        seg_b.append(c[1:])
        seg_way.append(np.full(c.shape[0] - 1, i))
    if not seg_a:
        raise StreetNetworkError("no walkable street segments in the input")
    a = np.concatenate(seg_a)
    b = np.concatenate(seg_b)
    way = np.concatenate(seg_way)
    hw_arr = np.asarray(highways, dtype=object)[way]
    name_arr = np.asarray(names, dtype=object)[way]
    del seg_hw

    # Nodes are vertex positions rounded to 1 cm: shared vertices join ways.
    keys = np.round(np.concatenate([a, b]) * 100.0).astype(np.int64)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    node_xy = uniq.astype(float) / 100.0
    m = a.shape[0]
    u = inverse[:m]
    v = inverse[m:]
    length = np.hypot(*(node_xy[u] - node_xy[v]).T)
    keep = u != v
    u, v, length, hw_arr, name_arr = u[keep], v[keep], length[keep], hw_arr[keep], name_arr[keep]
    # Drop duplicate segments (keep the first; same endpoints => same length).
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    _, first = np.unique(np.column_stack([lo, hi]), axis=0, return_index=True)
    first.sort()
    u, v, length, hw_arr, name_arr = (
        u[first],
        v[first],
        length[first],
        hw_arr[first],
        name_arr[first],
    )

    n = node_xy.shape[0]
    graph = sparse.csr_array(
        (np.concatenate([length, length]), (np.concatenate([u, v]), np.concatenate([v, u]))),
        shape=(n, n),
    )
    major = np.isin(hw_arr, list(MAJOR_HIGHWAYS))
    busy = np.isin(hw_arr, list(BUSY_HIGHWAYS))
    edge_lines = shapely.linestrings(np.stack([node_xy[u], node_xy[v]], axis=1))
    xmin, ymin = node_xy.min(axis=0)
    xmax, ymax = node_xy.max(axis=0)
    extent = (float(xmin), float(ymin), float(xmax), float(ymax))
    major_lines = edge_lines[major]
    busy_lines = edge_lines[busy]
    regions = _barrier_regions(
        {"node_xy": node_xy, "major_lines": major_lines, "major_u": u[major], "major_v": v[major]}
    )
    return StreetNetwork(
        node_xy=node_xy,
        graph=graph,
        edge_u=u,
        edge_v=v,
        edge_length=length,
        edge_major=major,
        edge_busy=busy,
        edge_name=name_arr,
        edge_lines=edge_lines,
        edge_tree=_tree(edge_lines),
        major_lines=major_lines,
        major_tree=_tree(major_lines),
        busy_lines=busy_lines,
        busy_tree=_tree(busy_lines),
        regions=regions,
        region_tree=_tree(regions),
        extent=extent,
    )


def _barrier_regions(network_parts: dict) -> np.ndarray:
    """Faces of the planar arrangement of major roads plus a frame around the network.

    The frame is a concave hull of the street nodes. A major road that dead-ends within
    `EXTEND_TO_FRAME_M` of the frame (typically cut off by the extract's boundary) is
    extended straight on to the frame, so it still separates the two sides.
    """
    node_xy = network_parts["node_xy"]
    major_lines = network_parts["major_lines"]
    mu, mv = network_parts["major_u"], network_parts["major_v"]
    hull = shapely.concave_hull(shapely.multipoints(node_xy), ratio=0.02)
    if hull.geom_type != "Polygon" or hull.area <= 0:
        hull = shapely.convex_hull(shapely.multipoints(node_xy))
    frame = hull.buffer(25.0)
    if frame.geom_type != "Polygon":
        frame = box(*frame.bounds)
    if major_lines.size == 0:
        return np.array([frame], dtype=object)
    ring = frame.exterior
    deg = np.bincount(np.concatenate([mu, mv]), minlength=node_xy.shape[0])
    ends = np.flatnonzero(deg == 1)
    extensions = []
    if ends.size:
        is_u = np.isin(mu, ends)
        end_nodes = np.concatenate([mu[is_u], mv[np.isin(mv, ends)]])
        other = np.concatenate([mv[is_u], mu[np.isin(mv, ends)]])
        end_pts = shapely.points(node_xy[end_nodes])
        near = shapely.distance(end_pts, ring) <= EXTEND_TO_FRAME_M
        for e, o in zip(end_nodes[near], other[near], strict=True):
            d = node_xy[e] - node_xy[o]
            n = float(np.hypot(*d))
            if n <= 0:
                continue
            ray = LineString([node_xy[e], node_xy[e] + d / n * (EXTEND_TO_FRAME_M + 100.0)])
            hit = ray.intersection(ring)
            if hit.is_empty:
                continue
            pts = shapely.get_parts(shapely.extract_unique_points(hit))
            if len(pts) == 0:
                continue
            locs = shapely.line_locate_point(ray, pts)
            # go 1 m past the frame so the crossing is noded (the dangling tail is dropped)
            reach = float(np.min(locs)) + 1.0
            extensions.append(LineString([node_xy[e], node_xy[e] + d / n * reach]))
    clipped = shapely.intersection(major_lines, frame)
    merged = unary_union(list(clipped) + extensions + [ring])
    faces = [p for p in polygonize(merged) if p.area > 0]
    if not faces:
        return np.array([frame], dtype=object)
    arr = np.empty(len(faces), dtype=object)
    arr[:] = faces
    return arr


def street_network_from_lines(lines: gpd.GeoDataFrame) -> StreetNetwork:
    """Build a StreetNetwork from a GeoDataFrame of LineStrings (columns name, highway).

    Used for synthetic towns and tests; the GeoDataFrame is reprojected to EPSG:27700.
    Non-walkable highway values are ignored; MultiLineStrings are split into parts.
    """
    gdf = lines
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise StreetNetworkError("expected a GeoDataFrame of LineStrings")
    if gdf.crs is None:
        raise StreetNetworkError("street lines need an explicit CRS (WGS84 expected)")
    gdf = gdf.to_crs(BNG)
    coords: list[np.ndarray] = []
    hws: list[str] = []
    names: list[str] = []
    name_col = gdf["name"] if "name" in gdf.columns else [""] * len(gdf)
    for geom, hw, nm in zip(gdf.geometry, gdf["highway"], name_col, strict=True):
        if geom is None or geom.is_empty or str(hw) not in WALKABLE_HIGHWAYS:
            continue
        parts = geom.geoms if geom.geom_type == "MultiLineString" else [geom]
        for part in parts:
            coords.append(np.asarray(part.coords)[:, :2])
            hws.append(str(hw))
            names.append("" if nm is None else str(nm))
    return _build_network(coords, hws, names)


def read_street_lines(pbf_path: str | Path) -> gpd.GeoDataFrame:
    """Walkable OSM highways from a .osm.pbf (pyosmium) as WGS84 LineStrings [name, highway, geometry].

    Ways tagged foot=no or access=private/no (without foot=yes) are skipped, as are
    motorways and non-walkable highway values. The server stores these lines and
    builds the network from them with `street_network_from_lines`.
    """
    import osmium

    path = Path(pbf_path)
    if not path.exists():
        raise StreetNetworkError(f"no such OSM file: {path}")
    lines: list[np.ndarray] = []
    hws: list[str] = []
    names: list[str] = []
    fp = (
        osmium.FileProcessor(str(path))
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    for way in fp:
        tags = way.tags
        hw = tags.get("highway")
        if hw not in WALKABLE_HIGHWAYS:
            continue
        foot = tags.get("foot")
        if foot == "no":
            continue
        if tags.get("access") in NO_FOOT_ACCESS and foot not in ("yes", "designated", "permissive"):
            continue
        pts = [(n.lon, n.lat) for n in way.nodes if n.location.valid()]
        if len(pts) < 2:
            continue
        lines.append(np.asarray(pts, dtype=float))
        hws.append(hw)
        names.append(tags.get("name", "") or tags.get("ref", ""))
    if not lines:
        raise StreetNetworkError(f"no walkable highways in {path}")
    return gpd.GeoDataFrame(
        {"name": names, "highway": hws}, geometry=[shapely.LineString(c) for c in lines], crs="EPSG:4326"
    )


def read_street_network(pbf_path: str | Path) -> StreetNetwork:
    """Read walkable OSM highways from a .osm.pbf into a StreetNetwork (see `read_street_lines`)."""
    lines = read_street_lines(pbf_path)
    coords = [np.asarray(g.coords) for g in lines.geometry]
    sizes = np.array([len(c) for c in coords])
    allxy = lonlat_to_bng(np.concatenate(coords))
    split = np.split(allxy, np.cumsum(sizes)[:-1])
    return _build_network(split, list(lines["highway"]), list(lines["name"]))


def snap_points(network: StreetNetwork, points_xy: np.ndarray) -> SnappedPoints:
    """Snap EPSG:27700 points to their nearest street edge (any walkable edge)."""
    pts_xy = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    pts = shapely.points(pts_xy)
    idx, dist = network.edge_tree.query_nearest(pts, return_distance=True, all_matches=False)
    # query_nearest returns (2, k) indices: [input index, tree index]
    edge = np.empty(len(pts), dtype=np.int64)
    off = np.empty(len(pts), dtype=float)
    edge[idx[0]] = idx[1]
    off[idx[0]] = dist
    lines = network.edge_lines[edge]
    along = shapely.line_locate_point(lines, pts)
    length = network.edge_length[edge]
    along = np.clip(along, 0.0, length)
    a = network.node_xy[network.edge_u[edge]]
    b = network.node_xy[network.edge_v[edge]]
    frac = np.where(length > 0, along / np.where(length > 0, length, 1.0), 0.0)
    snapped = a + (b - a) * frac[:, None]
    return SnappedPoints(
        edge=edge, offset_m=off, to_u_m=along, to_v_m=length - along, snapped_xy=snapped
    )


@dataclass
class NetworkPaths:
    """Distances between a set of points on the network, with what is needed to draw paths."""

    dist: np.ndarray  # (k, k) metres
    snapped: SnappedPoints
    nodes: np.ndarray  # global node ids of the local subgraph
    sources: np.ndarray  # local ids of the dijkstra sources (edge ends of the points)
    node_dist: np.ndarray  # (len(sources), len(nodes))
    pred: np.ndarray  # predecessors, local ids
    end_src: np.ndarray  # (k, 2) row in node_dist for (u, v) of each point's edge
    end_local: np.ndarray  # (k, 2) local node id of (u, v)
    choice: np.ndarray  # (k, k, 2) which end (0=u, 1=v) leaves i / enters j on the best path
    points_xy: np.ndarray


def _local_subgraph(network: StreetNetwork, xy: np.ndarray, must: np.ndarray, margin: float):
    lo = xy.min(axis=0) - margin
    hi = xy.max(axis=0) + margin
    nx = network.node_xy
    mask = (nx[:, 0] >= lo[0]) & (nx[:, 0] <= hi[0]) & (nx[:, 1] >= lo[1]) & (nx[:, 1] <= hi[1])
    mask[must] = True
    nodes = np.flatnonzero(mask)
    sub = network.graph[nodes][:, nodes]
    return nodes, sub


def network_paths(
    network: StreetNetwork, points_xy: np.ndarray, margin_m: float | None = None
) -> NetworkPaths:
    """Shortest walking distances between EPSG:27700 points over the street network.

    Each point is snapped to its nearest edge; distance = snap offset + along-edge
    distance to an edge end + shortest path + the same at the other point. Dijkstra runs
    on a subgraph around the points (bounding box + margin) for speed; pairs unreachable
    there fall back to 1.5x the straight-line distance.
    """
    xy = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    k = xy.shape[0]
    snapped = snap_points(network, xy)
    eu = network.edge_u[snapped.edge]
    ev = network.edge_v[snapped.edge]
    if margin_m is None:
        span = float(np.max(xy.max(axis=0) - xy.min(axis=0))) if k > 1 else 0.0
        margin_m = max(250.0, 0.35 * span)
    nodes, sub = _local_subgraph(network, xy, np.concatenate([eu, ev]), margin_m)
    local_u = np.searchsorted(nodes, eu)
    local_v = np.searchsorted(nodes, ev)
    src_nodes, src_inv = np.unique(np.concatenate([local_u, local_v]), return_inverse=True)
    node_dist, pred = dijkstra(sub, directed=False, indices=src_nodes, return_predecessors=True)
    end_src = src_inv.reshape(2, k).T  # row in node_dist for (u, v)
    end_local = np.column_stack([local_u, local_v])
    off_end = np.column_stack([snapped.to_u_m, snapped.to_v_m])  # (k, 2)

    # cand[i, a, j, b] = off_end[i, a] + D(end a of i -> end b of j) + off_end[j, b]
    d_ends = node_dist[:, end_local.reshape(-1)].reshape(-1, k, 2)  # (S, k, 2)
    d_ends = d_ends[end_src]  # (k, 2, k, 2)
    cand = off_end[:, :, None, None] + d_ends + off_end[None, None, :, :]
    flat = cand.transpose(0, 2, 1, 3).reshape(k, k, 4)
    best = flat.argmin(axis=2)
    dist = np.take_along_axis(flat, best[:, :, None], axis=2)[:, :, 0]
    choice = np.stack([best // 2, best % 2], axis=2)
    # Same edge: walk directly along it.
    same = snapped.edge[:, None] == snapped.edge[None, :]
    direct = np.abs(snapped.to_u_m[:, None] - snapped.to_u_m[None, :])
    use_direct = same & (direct <= dist)
    dist = np.where(use_direct, direct, dist)
    choice[use_direct] = -1
    dist = dist + snapped.offset_m[:, None] + snapped.offset_m[None, :]
    straight = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    bad = ~np.isfinite(dist)
    if bad.any():
        dist[bad] = 1.5 * straight[bad]
        choice[bad] = -2
    np.fill_diagonal(dist, 0.0)
    dist = np.minimum(dist, dist.T)
    return NetworkPaths(
        dist=dist,
        snapped=snapped,
        nodes=nodes,
        sources=src_nodes,
        node_dist=node_dist,
        pred=pred,
        end_src=end_src,
        end_local=end_local,
        choice=choice,
        points_xy=xy,
    )


def network_distances(network: StreetNetwork, points_xy: np.ndarray) -> np.ndarray:
    """(k, k) walking distances in metres between EPSG:27700 points over the network."""
    return network_paths(network, points_xy).dist


def path_coords(paths: NetworkPaths, network: StreetNetwork, i: int, j: int) -> np.ndarray:
    """EPSG:27700 polyline walking from point i to point j along the network."""
    p, q = paths.points_xy[i], paths.points_xy[j]
    si, sj = paths.snapped.snapped_xy[i], paths.snapped.snapped_xy[j]
    ch = paths.choice[i, j]
    if ch[0] == -1 or ch[0] == -2:
        if ch[0] == -2:
            return np.array([p, q])
        return np.array([p, si, sj, q])
    a, b = int(ch[0]), int(ch[1])
    src_row = paths.end_src[i, a]
    target = paths.end_local[j, b]
    start_local = paths.sources[src_row]
    seq = [target]
    pred = paths.pred[src_row]
    cur = target
    guard = 0
    while cur != start_local and guard < 100000:
        cur = pred[cur]
        if cur < 0:
            return np.array([p, q])
        seq.append(cur)
        guard += 1
    seq.reverse()
    node_pts = network.node_xy[paths.nodes[np.asarray(seq)]]
    return np.vstack([p, si, node_pts, sj, q])


def route_line_xy(
    network: StreetNetwork | None,
    paths: NetworkPaths | None,
    points_xy: np.ndarray,
    order: Sequence[int],
) -> LineString:
    """EPSG:27700 LineString through the points in `order`, along streets if known."""
    xy = np.asarray(points_xy, dtype=float)
    if len(order) == 0:
        return LineString()
    if network is None or paths is None:
        c = xy[list(order)]
        if len(c) == 1:
            c = np.vstack([c, c])
        return LineString(c)
    parts: list[np.ndarray] = [xy[order[0]][None, :]]
    for a, b in itertools.pairwise(order):
        parts.append(path_coords(paths, network, int(a), int(b))[1:])
    c = np.vstack(parts)
    # drop consecutive duplicates
    keep = np.ones(len(c), dtype=bool)
    keep[1:] = np.any(np.abs(np.diff(c, axis=0)) > 1e-6, axis=1)
    c = c[keep]
    if len(c) == 1:
        c = np.vstack([c, c])
    return LineString(c)


def region_ids(network: StreetNetwork, points_xy: np.ndarray) -> np.ndarray:
    """Barrier-region id of each EPSG:27700 point (the face of the major-road arrangement)."""
    pts = shapely.points(np.asarray(points_xy, dtype=float).reshape(-1, 2))
    out = np.full(len(pts), -1, dtype=np.int64)
    hit = network.region_tree.query(pts, predicate="within")
    out[hit[0]] = hit[1]
    missing = np.flatnonzero(out < 0)
    if missing.size:
        near = network.region_tree.query_nearest(pts[missing], all_matches=False)
        out[missing[near[0]]] = near[1]
    return out


def crossing_matrix(lines_tree: shapely.STRtree, points_xy: np.ndarray) -> np.ndarray:
    """(k, k) bool: does the straight segment between points i and j cross a line in the tree."""
    xy = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    k = xy.shape[0]
    out = np.zeros((k, k), dtype=bool)
    if k < 2 or len(lines_tree.geometries) == 0:
        return out
    iu, ju = np.triu_indices(k, 1)
    segs = shapely.linestrings(np.stack([xy[iu], xy[ju]], axis=1))
    hit = lines_tree.query(segs, predicate="intersects")
    if hit.shape[1]:
        s = np.unique(hit[0])
        out[iu[s], ju[s]] = True
        out[ju[s], iu[s]] = True
    return out


def count_crossings(lines_tree: shapely.STRtree, ordered_xy: np.ndarray) -> int:
    """Number of consecutive stop pairs whose straight segment crosses a line in the tree."""
    xy = np.asarray(ordered_xy, dtype=float).reshape(-1, 2)
    if xy.shape[0] < 2 or len(lines_tree.geometries) == 0:
        return 0
    segs = shapely.linestrings(np.stack([xy[:-1], xy[1:]], axis=1))
    hit = lines_tree.query(segs, predicate="intersects")
    return int(np.unique(hit[0]).size)


def major_road_crossings(network: StreetNetwork, ordered_xy: np.ndarray) -> int:
    """Consecutive pairs of an ordered EPSG:27700 stop sequence whose segment crosses a major road."""
    return count_crossings(network.major_tree, ordered_xy)


__all__ = [
    "BNG",
    "BUSY_HIGHWAYS",
    "MAJOR_HIGHWAYS",
    "WALKABLE_HIGHWAYS",
    "WGS84",
    "NetworkPaths",
    "SnappedPoints",
    "StreetNetwork",
    "StreetNetworkError",
    "bng_to_lonlat",
    "count_crossings",
    "crossing_matrix",
    "lonlat_to_bng",
    "major_road_crossings",
    "network_distances",
    "network_paths",
    "read_street_network",
    "region_ids",
    "route_line_xy",
    "snap_points",
    "street_network_from_lines",
]
