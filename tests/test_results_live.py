"""The live field view: lists out today with progress, doors knocked by hour today, each canvasser's last sync.

On SQLite and PostgreSQL, on the seeded campaign (tests/test_results.py), whose
earlier knocks are weeks old; today's knocks are added here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import ContactAttempt, WalkListStop
from tests.test_results import Seeded, hlc
from tests.test_results import (
    seeded as seeded,  # the seeded campaign fixture, shared with tests/test_results.py
)

LONDON = ZoneInfo("Europe/London")


async def test_live_view_counts_today_only_and_shows_last_syncs(
    client: AsyncTestClient[Litestar], seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Only today's knocks count; each list out today shows its doors done; hours add up; canvassers carry their last sync; no locations."""
    cid = seeded.campaign_id
    list_ids = list(seeded.lists)
    now = datetime.now(UTC)
    midnight = datetime.now(LONDON).replace(hour=0, minute=0, second=0, microsecond=0)
    # today's knocks at times between local midnight and now (the newest a minute ago), and one from yesterday
    moments = [max(midnight.astimezone(UTC), now - timedelta(minutes=m)) for m in (1, 2, 3, 61)]
    async with sessionmaker() as session:
        doors = (await session.scalars(select(WalkListStop.address_id).where(WalkListStop.walk_list_id == list_ids[0]).order_by(WalkListStop.stop_number))).all()
        rows = [(doors[0], "spoke", moments[0]), (doors[1], "not_home", moments[1]), (doors[1], "spoke", moments[2]), (doors[2], "refused", moments[3]),
                (doors[3], "spoke", midnight.astimezone(UTC) - timedelta(hours=2))]
        for n, (address_id, outcome, at) in enumerate(rows):
            session.add(ContactAttempt(id=f"live-{n}", campaign_id=cid, address_id=address_id, walk_list_id=list_ids[0], outcome=outcome, hlc=hlc(9_000_000 + n),
                                       at=at, user_id=seeded.users["canvasser"]))
        await session.commit()
    response = await client.get(f"/api/campaigns/{cid}/results/live", params={"tz": "Europe/London"}, headers=seeded.auth("lead"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["day"] == datetime.now(LONDON).date().isoformat()
    (out,) = body["lists"]
    assert out["id"] == list_ids[0] and out["name"] == "List 1"
    assert (out["doors_knocked_today"], out["knocks_today"], out["contacts_today"]) == (3, 4, 3)
    assert out["doors"] == 180 and out["canvassers"] == ["Cam Canvasser"]
    assert out["doors_remaining"] == 180 - out["doors_knocked"]
    assert sum(h["attempts"] for h in body["by_hour"]) == 4 and sum(h["contacts"] for h in body["by_hour"]) == 3
    assert [int(h["bucket"]) for h in body["by_hour"]] == sorted(int(h["bucket"]) for h in body["by_hour"])
    people = {c["name"]: c for c in body["canvassers"]}
    assert people["Cam Canvasser"]["doors_knocked_today"] == 3
    assert people["Cam Canvasser"]["last_sync_at"] is not None  # phone 0 synced an hour ago in the seed
    assert people["Lee Lead"]["last_sync_at"] is None  # phone 2 never synced
    assert "lat" not in json.dumps(body) and "lon" not in json.dumps(body)
    assert body["refresh_seconds"] <= 10
    denied = await client.get(f"/api/campaigns/{cid}/results/live", headers=seeded.auth("canvasser"))
    assert denied.status_code == 403
