"""Data health reads the sync records: a phone that synced minutes ago is not stale, one that never synced says so.

The phones here sync through the real API with the reference client
(``sync.client.SyncClient``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Device, DeviceReceipt
from sync.client import SyncClient
from sync.clock import HybridClock
from tests.conftest import World


async def _phone(client: AsyncTestClient[Litestar], world: World, who: str, name: str) -> SyncClient:
    """Register a phone for a user through the API; the reference client that drives it."""
    response = await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": name}, headers=world.auth(who))
    assert response.status_code == 201, response.text
    token = response.json()

    async def transport(method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        reply = await client.request(method, path, content=body or None, headers=headers)
        return reply.status_code, reply.content

    return SyncClient(token["node_id"], token["token"], transport, HybridClock(token["node_id"]))


async def _health(client: AsyncTestClient[Litestar], world: World, **params: object) -> dict:
    response = await client.get(f"/api/campaigns/{world.campaign_a}/results/health", params=params, headers=world.auth("lead"))
    assert response.status_code == 200, response.text
    return response.json()


async def test_phone_that_just_pulled_is_not_stale(client: AsyncTestClient[Litestar], world: World) -> None:
    """A phone whose last sync was a pull (nothing to push) a moment ago is listed as synced, not flagged."""
    phone = await _phone(client, world, "canvasser", "pulled phone")
    await phone.pull()
    body = await _health(client, world, stale_hours=24)
    assert [d["name"] for d in body["stale_devices"]] == []
    (device,) = [d for d in body["devices"] if d["name"] == "pulled phone"]
    assert device["last_sync_at"] is not None
    assert device["stale"] is False and device["never_synced"] is False


async def test_phone_synced_one_minute_ago_is_not_flagged(
    client: AsyncTestClient[Litestar], world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A phone whose push receipt is one minute old is not flagged even with a one-hour limit; one two hours old is."""
    fresh = await _phone(client, world, "canvasser", "fresh phone")
    old = await _phone(client, world, "lead", "old phone")
    await fresh.pull()
    await old.pull()
    now = datetime.now(UTC)
    async with sessionmaker() as session:
        ids = {d.name: d.id for d in (await session.scalars(select(Device))).all()}
        # the push and pull records as a sync a minute (two hours) ago leaves them
        for name, ago in (("fresh phone", timedelta(minutes=1)), ("old phone", timedelta(hours=2))):
            await session.execute(update(Device).where(Device.id == ids[name]).values(last_sync_at=now - ago, last_seen_at=now - ago))
            session.add(DeviceReceipt(device_id=ids[name], last_seq=3, updated_at=now - ago))
        await session.commit()
    body = await _health(client, world, stale_hours=1)
    assert [d["name"] for d in body["stale_devices"]] == ["old phone"]
    by_name = {d["name"]: d for d in body["devices"]}
    assert by_name["fresh phone"]["stale"] is False
    assert 0.9 / 60 <= by_name["fresh phone"]["hours_since_sync"] < 0.5
    assert by_name["old phone"]["stale"] is True
    assert 1.9 <= by_name["old phone"]["hours_since_sync"] < 2.5


async def test_phone_that_never_synced_is_flagged_as_never(client: AsyncTestClient[Litestar], world: World) -> None:
    """A registered phone with no push or pull is flagged, with no last sync and `never_synced` set."""
    await _phone(client, world, "canvasser", "unused phone")
    body = await _health(client, world, stale_hours=24)
    (device,) = body["stale_devices"]
    assert device["name"] == "unused phone"
    assert device["last_sync_at"] is None and device["hours_since_sync"] is None
    assert device["never_synced"] is True
