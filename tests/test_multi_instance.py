"""Several app instances behind a load balancer, one PostgreSQL (issue 18).

Three `canvass serve` processes on their own ports, Debian's HAProxy in front
(started by the test), rate limits in Redis. Phones (the reference client) sync
through the balancer while one instance is SIGKILLed and restarted; afterwards
every acknowledged write is stored exactly once, every phone has converged
with the server, and a sign-in budget counts across the instances.

Needs HAProxy (`apt-get install -y haproxy`; .ci/run installs it), Redis and
PostgreSQL on 127.0.0.1; outside CI a missing one skips with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from bench.cluster import Cluster, haproxy_available
from bench.load import (
    SECRET,
    Meter,
    arrange,
    canvass,
    check,
    create_database,
    drop_database,
    forget_namespace,
    push_rest,
    sync_once,
)
from tests.conftest import PG_HOST, PG_PORT

PHONES = 12
LISTS = 4
ROUNDS = 8


def need(condition: bool, reason: str) -> None:
    """Skip with the reason outside CI; fail in CI, where everything must be there."""
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must provide it: see .ci/run)")
        pytest.skip(reason)


def pg_answers() -> bool:
    import socket

    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def fold_passes(metrics: str) -> float:
    """`canvass_fold_passes_total` in one instance's /metrics text."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith("canvass_fold_passes_total "))


async def until(predicate: Callable[[], bool], limit_s: float = 60) -> None:
    """Wait (politely) until the predicate holds; a generous bound, never a timing assertion."""
    for _ in range(int(limit_s / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


@pytest.mark.timeout(240)
async def test_phones_sync_through_the_balancer_while_an_instance_is_killed(redis_url: str) -> None:
    """0 lost and 0 duplicated writes, converged; the killed instance serves again; a rate limit holds across instances."""
    need(haproxy_available(), "HAProxy is not installed (apt-get install -y haproxy)")
    need(pg_answers(), f"PostgreSQL is not answering on {PG_HOST}:{PG_PORT}")
    from server.db.migrate import upgrade_database
    from sync.client import SyncClient
    from sync.clock import HybridClock

    name = f"canvass_multi_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    namespace = f"canvass_multi_{uuid.uuid4().hex[:10]}"
    url = await create_database(name)
    cluster: Cluster | None = None
    try:
        await asyncio.to_thread(upgrade_database, url)
        _cid, phones, survey_id = await arrange(url, PHONES, LISTS)
        cluster = Cluster(3, {
            "CANVASS_DATABASE_URL": url,
            "CANVASS_SECRET_KEY": SECRET,
            "CANVASS_STORE_URL": redis_url,
            "CANVASS_STORE_NAMESPACE": namespace,
            "CANVASS_AUTH_RATE_PER_MINUTE": "3",
            "CANVASS_SYNC_RATE_PER_MINUTE": "100000",
            "CANVASS_RESULT_FOLD_SECONDS": "1",
            "CANVASS_ARGON2_PROFILE": "test",
        })
        await asyncio.to_thread(cluster.start)
        meter = Meter()
        rng = random.Random(18)
        async with httpx.AsyncClient(base_url=cluster.url, timeout=httpx.Timeout(30.0)) as http:
            transport = meter.transport(http)
            for phone in phones:
                phone.client = SyncClient(phone.node_id, phone.token, transport, HybridClock(phone.node_id),
                                          rng=random.Random(rng.random()), backoff_base=0.1, backoff_cap=1.0)
            await asyncio.gather(*(p.client.pull(retries=3) for p in phones))

            async def rounds(phone: object, seed: float) -> None:
                local = random.Random(seed)
                for _ in range(ROUNDS):
                    canvass(phone, local, survey_id)  # type: ignore[arg-type]
                    await sync_once(phone)  # type: ignore[arg-type]
                    await asyncio.sleep(local.uniform(0.05, 0.25))

            async def folders() -> list[int]:
                """The instances whose background task has folded (each instance's own /metrics)."""
                found = []
                for n in range(3):
                    try:
                        text = (await http.get(f"{cluster.instance_url(n)}/metrics")).text
                    except httpx.HTTPError:
                        continue
                    if fold_passes(text) > 0:
                        found.append(n)
                return found

            load = asyncio.gather(*(rounds(p, rng.random()) for p in phones))
            await until(lambda: sum(meter.statuses.values()) >= 3 * PHONES)  # load is flowing to every instance
            leaders = await folders()
            while not leaders:
                await asyncio.sleep(0.2)
                leaders = await folders()
            assert len(leaders) == 1, f"instances {leaders} all fold"  # one fold across the instances
            victim = leaders[0]
            cluster.kill(victim)  # SIGKILL the folding instance, mid-run
            assert cluster.apps[victim] is not None and cluster.apps[victim].returncode == -signal.SIGKILL
            await until(lambda: sum(meter.statuses.values()) >= 6 * PHONES)  # the others carry on
            cluster.restart(victim)
            await asyncio.to_thread(cluster.wait_ready, victim)
            await load
            for _ in range(3):  # quiesce: what is left is pushed, then everyone pulls everything
                pending = [p for p in phones if p.client.outbox]
                if not pending:
                    break
                await asyncio.gather(*(push_rest(p) for p in pending))
            await asyncio.gather(*(p.client.pull(retries=3) for p in phones))

            served = set()
            for _ in range(9):
                served.add((await http.get("/health")).headers["x-canvass-instance"])
            assert served == {"app0", "app1", "app2"}  # the restarted instance is back in the rotation

            # one sign-in budget (3 a minute) across the instances, not one each
            attempts = [await http.post("/api/auth/login", json={"email": "x@y.z", "password": "not the one"}) for _ in range(4)]
            assert [r.status_code for r in attempts] == [401, 401, 401, 429]
            assert len({r.headers["x-canvass-instance"] for r in attempts[:3]}) >= 2

            # every instance's own /metrics answers (the balancer keeps it private)
            assert (await http.get("/metrics")).status_code == 404
            pushes = 0.0
            for n in range(3):
                text = httpx.get(f"{cluster.instance_url(n)}/metrics", timeout=5).text
                pushes += sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                              if line.startswith("canvass_sync_pushes_total "))
            assert pushes > 0
            # another instance took the fold over; the restarted one (fresh counters) did not fold beside it
            successors = await folders()
            while not successors:
                await asyncio.sleep(0.2)
                successors = await folders()
            assert len(successors) == 1 and successors != [victim], successors
            # the balancer's request id (a UUID, nothing of the caller's) comes back and is on the instance's log line
            traced = await http.get("/health")
            assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", traced.headers["x-request-id"], re.I)
            request_id = traced.headers["x-request-id"]

        def access_lines() -> list[dict]:
            lines = [json.loads(line) for n in range(3) for line in (cluster.workdir / f"app{n}.log").read_text().splitlines()
                     if line.startswith("{")]
            return [line for line in lines if line["logger"] == "canvass.access"]

        access = access_lines()
        for _ in range(50):  # the access line is written after the answer is sent
            if any(line["request_id"] == request_id for line in access):
                break
            time.sleep(0.1)
            access = access_lines()
        assert any(line["request_id"] == request_id and line["route"] == "/health" for line in access)
        assert any(line["route"] == "/api/sync/push" for line in access)
        assert "127.0.0.1" not in json.dumps(access) and "7f000001" not in json.dumps(access).lower()

        checks = await check(url, phones)
        assert checks["lost_writes"] == 0, checks["lost_examples"]
        assert checks["converged"], checks["divergence_examples"]
        assert checks["events_stored"] > 0
    finally:
        if cluster is not None:
            await asyncio.to_thread(cluster.stop)
        await drop_database(name)
        await forget_namespace(redis_url, namespace)
