"""API shapes of the campaigns domain."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec

from server.db.models import Role


class CampaignCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new campaign; the creator becomes its admin."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    slug: Annotated[str, msgspec.Meta(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    polling_day: date | None = None
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 90


class CampaignOut(msgspec.Struct):
    """A campaign and the caller's role in it."""

    id: int
    name: str
    slug: str
    polling_day: date | None
    retention_days: int
    created_at: datetime
    role: Role | None = None
