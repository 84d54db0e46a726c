"""API shapes of the targeting domain. Everything here describes AREAS, never people."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from server.plain_text import PlainName


class MeasurePreset(msgspec.Struct):
    """A named measure over census columns, with its formula(s) per census vintage."""

    name: str
    formulas: list[str]
    descriptions: list[str]


class AreaRankingCollection(msgspec.Struct):
    """A GeoJSON FeatureCollection of ranked areas, ready for a choropleth."""

    type: str
    features: list[dict[str, Any]]
    measure: str
    formula: str
    columns: list[str]
    count: int


class TargetCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A target from a drawn polygon, chosen area codes, or both (combined by union or intersection)."""

    name: PlainName
    polygon: dict[str, Any] | None = None
    area_codes: list[str] | None = None
    combine: Literal["intersection", "union"] = "intersection"
    measure: str | None = None
    threshold: float | None = None


class TargetPreviewArea(msgspec.Struct):
    """How much of one area a target covers."""

    code: str
    fraction_inside: float


class TargetPreview(msgspec.Struct):
    """What a target holds: doors, electors, estimated residents by census group (area-weighted), km2."""

    area_km2: float
    addresses: int
    buildings: int | None
    electors: int | None
    estimated_residents: dict[str, float]
    areas: list[TargetPreviewArea]


class TargetOut(msgspec.Struct):
    """A stored target with its rule, geometry (GeoJSON) and preview figures."""

    id: int
    name: str
    rule: dict[str, Any]
    geometry: dict[str, Any] | None
    created_at: datetime
    preview: TargetPreview | None = None
