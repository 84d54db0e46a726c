"""Street network: building, snapping, distances and barrier regions."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString

from bench.walklists import ORIGIN
from geo.streets import (
    StreetNetworkError,
    bng_to_lonlat,
    network_distances,
    read_street_network,
    region_ids,
    snap_points,
    street_network_from_lines,
)


def _streets(rows: list[tuple[str, str, list[tuple[float, float]]]]) -> gpd.GeoDataFrame:
    geoms = [LineString(bng_to_lonlat(np.asarray(c) + ORIGIN)) for _, _, c in rows]
    return gpd.GeoDataFrame(
        {"name": [r[0] for r in rows], "highway": [r[1] for r in rows]},
        geometry=geoms,
        crs="EPSG:4326",
    )


def test_u_shaped_street_distance_follows_the_street() -> None:
    # A U: two parallel streets 50 m apart joined 400 m away; no way across at the open end.
    net = street_network_from_lines(
        _streets(
            [
                ("A", "residential", [(0, 0), (400, 0)]),
                ("B", "residential", [(400, 0), (400, 50)]),
                ("C", "residential", [(400, 50), (0, 50)]),
            ]
        )
    )
    pts = np.array([[10.0, 8.0], [10.0, 42.0]]) + ORIGIN
    d = network_distances(net, pts)
    assert d.shape == (2, 2) and d[0, 1] == d[1, 0]
    assert d[0, 1] == pytest.approx(8 + 390 + 50 + 390 + 8, abs=0.5)
    snapped = snap_points(net, pts)
    assert snapped.offset_m == pytest.approx([8.0, 8.0], abs=1e-6)


def test_houses_facing_each_other_on_a_quiet_street_are_close() -> None:
    net = street_network_from_lines(_streets([("A", "residential", [(0, 0), (400, 0)])]))
    pts = np.array([[100.0, 8.0], [100.0, -8.0], [300.0, 8.0]]) + ORIGIN
    d = network_distances(net, pts)
    assert d[0, 1] == pytest.approx(16.0, abs=1e-6)
    assert d[0, 2] == pytest.approx(216.0, abs=1e-6)


def test_major_roads_split_regions_and_motorways_are_ignored() -> None:
    net = street_network_from_lines(
        _streets(
            [
                ("Grid W", "residential", [(0, 0), (0, 400)]),
                ("Grid E", "residential", [(400, 0), (400, 400)]),
                ("Grid S", "residential", [(0, 0), (400, 0)]),
                ("Grid N", "residential", [(0, 400), (400, 400)]),
                ("High Street", "primary", [(200, 0), (200, 400)]),
                ("M1", "motorway", [(0, 200), (400, 200)]),
            ]
        )
    )
    assert not any(n == "M1" for n in net.edge_name)
    pts = np.array([[100.0, 200.0], [300.0, 200.0], [120.0, 50.0]]) + ORIGIN
    r = region_ids(net, pts)
    assert r[0] != r[1] and r[0] == r[2]


def test_rejects_input_without_crs_or_streets() -> None:
    g = _streets([("A", "residential", [(0, 0), (10, 0)])])
    with pytest.raises(StreetNetworkError):
        street_network_from_lines(g.set_crs(None, allow_override=True))
    with pytest.raises(StreetNetworkError):
        street_network_from_lines(_streets([("M", "motorway", [(0, 0), (10, 0)])]))


def test_missing_osm_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(StreetNetworkError, match="no such OSM file"):
        read_street_network(tmp_path / "nowhere.osm.pbf")


def test_camden_network_reads_and_regions_cover_it(camden_network) -> None:
    net = camden_network
    assert net.n_edges > 30000
    assert net.edge_major.sum() > 1000
    assert len(net.regions) > 50
    # every node lies in some region (faces cover the frame)
    r = region_ids(net, net.node_xy[::500])
    assert (r >= 0).all()
