"""Rate limits and sign-in backoff shared by every app instance (issue 18): Redis through Litestar's store interface.

Two apps built from the same settings stand for two `canvass serve` processes
behind a load balancer. With `CANVASS_STORE_URL=redis://...` a client that
spreads its requests over both meets one budget; with the default (memory)
each process counts alone, which is what the SQLite demo keeps.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from bench.load import forget_namespace
from server.app import create_app
from server.settings import Settings, SettingsError, load_settings
from tests.conftest import TEST_PASSWORD, World


@pytest.fixture
async def shared(settings: Settings, redis_url: str) -> AsyncIterator[Settings]:
    """Settings on Redis under a namespace of this test's own (other runs share the Redis); emptied afterwards."""
    namespace = f"canvass_test_{uuid.uuid4().hex[:10]}"
    yield msgspec.structs.replace(settings, store_url=redis_url, store_namespace=namespace)
    await forget_namespace(redis_url, namespace)


async def test_rate_limit_holds_across_two_instances(shared: Settings) -> None:
    """A budget of 3 sign-ins a minute spread over two instances: the fourth, on either, is refused."""
    limited = msgspec.structs.replace(shared, auth_rate_per_minute=3)
    async with AsyncTestClient(app=create_app(limited)) as one, AsyncTestClient(app=create_app(limited)) as two:
        statuses = []
        for client in (one, two, one, two):
            statuses.append((await client.post("/api/auth/login", json={"email": "x@y.z", "password": "nope"})).status_code)
        assert statuses == [401, 401, 401, 429]
        assert (await one.get("/health")).status_code == 200


async def test_memory_store_counts_per_process(settings: Settings) -> None:
    """The default (no Redis): each process has its own budget, as the SQLite demo always had."""
    limited = msgspec.structs.replace(settings, auth_rate_per_minute=2)
    async with AsyncTestClient(app=create_app(limited)) as one, AsyncTestClient(app=create_app(limited)) as two:
        statuses = []
        for client in (one, two, one, two):
            statuses.append((await client.post("/api/auth/login", json={"email": "x@y.z", "password": "nope"})).status_code)
        assert statuses == [401, 401, 401, 401]
        assert (await one.post("/api/auth/login", json={"email": "x@y.z", "password": "nope"})).status_code == 429


async def test_sign_in_lockout_holds_across_two_instances(shared: Settings, world: World) -> None:
    """Failures counted on one instance lock the account (from that address) on the other: even the right password waits."""
    async with AsyncTestClient(app=create_app(shared)) as one, AsyncTestClient(app=create_app(shared)) as two:
        for n in range(shared.login_max_failures):
            client = (one, two)[n % 2]
            wrong = await client.post("/api/auth/login", json={"email": "lead@example.org", "password": "guess " * 3})
            assert wrong.status_code == 401
        locked = await two.post("/api/auth/login", json={"email": "lead@example.org", "password": TEST_PASSWORD})
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) > 0


async def test_store_keys_hold_no_personal_data(shared: Settings, redis_url: str) -> None:
    """The backoff keys and values in Redis are hashes and numbers: no email, no address."""
    import redis.asyncio as redis

    async with AsyncTestClient(app=create_app(shared)) as one:
        await one.post("/api/auth/login", json={"email": "Someone.Private@example.org", "password": "guess " * 3})
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{shared.store_namespace}*")]
        assert any(b"sign_in_throttle" in key for key in keys)
        for key in keys:
            value = await client.get(key) or b""
            blob = (key + value).lower()
            assert b"someone" not in blob and b"example.org" not in blob and b"testclient" not in blob
    finally:
        await client.aclose()


def test_store_url_is_checked() -> None:
    """Only memory and Redis URLs are accepted, in one line."""
    assert load_settings(environ={"CANVASS_STORE_URL": "redis://127.0.0.1:6379/0"}).store_url.startswith("redis://")
    with pytest.raises(SettingsError, match="CANVASS_STORE_URL"):
        load_settings(environ={"CANVASS_STORE_URL": "memcached://127.0.0.1"})


async def test_unreachable_store_fails_open(settings: Settings) -> None:
    """Redis down: sign-ins and everything else still answer (limits are off, counted as store errors), not 500."""
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = msgspec.structs.replace(settings, store_url=f"redis://127.0.0.1:{port}/0", auth_rate_per_minute=1)
    async with AsyncTestClient(app=create_app(down)) as client:
        statuses = [(await client.post("/api/auth/login", json={"email": "x@y.z", "password": "nope"})).status_code for _ in range(3)]
        assert statuses == [401, 401, 401]
        metrics = (await client.get("/metrics")).text
    errors = [line for line in metrics.splitlines() if line.startswith("canvass_store_errors_total ")]
    assert errors and float(errors[0].rsplit(" ", 1)[1]) > 0
