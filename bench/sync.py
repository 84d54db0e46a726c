"""Benchmark the sync push path, a raw bulk insert of the same rows, push latency and list size.

Run: `python -m bench.sync [--devices 200] [--batches 5] [--concurrency 8] [--workers 2] [--only postgresql|sqlite]`.
Progress goes to stderr; the last stdout line is one JSON object.

What is measured (each backend gets a fresh database, created and dropped here):

* ``*_mutations_per_s``: contact-attempt mutations applied through the real
  push path: HTTP requests over 127.0.0.1 to the real server (uvicorn,
  ``--workers`` processes on PostgreSQL, one on SQLite, the embedded
  single-process deployment): routing, auth, msgspec decoding, the push
  applied atomically, receipts, change feed. ``--devices`` phones each push
  ``--batches`` batches of 100, ``--concurrency`` pushes in flight. The bodies
  are encoded before the clock starts (a phone encodes its own); the client
  runs in this process on the same machine, so its CPU counts against the
  server's: it uses aiohttp and msgspec to take as little as it can, and every
  answer is still checked (200, every mutation ``applied``).
* ``*_scope_check_cost_pct``: the cost of the write-scope check (contract D) in the same run:
  the same pushes from canvasser phones (every door checked against the lists the user holds)
  and from organiser phones (campaign-wide, no scope look-up), alternated twice, best rate of
  each; ``100 * (campaign_wide - scoped) / campaign_wide``.
* ``*_ratio_to_raw_insert``: that rate over a raw bulk INSERT (one
  executemany) of the same number of equivalent contact-attempt rows into the
  same table of the same database, measured in the same run.
* ``*_cpu_ms_per_push``: where the machine's CPU went during the throughput
  phase, per 100-mutation push: the server's processes, PostgreSQL's
  processes and this client (``*_host_busy_pct``: the whole machine's busy share).
* ``push_p95_ms``: 95th percentile latency of a 50-mutation push (PostgreSQL,
  sequential pushes from one phone, measured at the client).
* ``initial_list_bytes_gzip``: a 60-door list with two electors per door and
  a five-question survey, downloaded as a phone does (first pull page plus
  every ``GET /api/sync/lists/{id}`` page), each response body gzipped and
  the sizes summed.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("CANVASS_ARGON2_PROFILE", "test")

import aiohttp
import asyncpg
import httpx
import msgspec
from sqlalchemy import func, insert, select

from bench.load import SECRET, free_port, rss_mb, start_server, wait_ready, worker_pids
from server.db.migrate import upgrade_database_async
from server.db.models import (
    Address,
    Assignment,
    ContactAttempt,
    Person,
    Role,
    Survey,
    WalkList,
    WalkListStop,
)
from server.db.session import create_engine_for, create_sessionmaker
from server.settings import load_settings
from sync.clock import HybridClock
from sync.protocol import Envelope, PushRequest, RecordContactAttempt

PG_HOST = os.environ.get("CANVASS_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CANVASS_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("CANVASS_TEST_PG_USER", "postgres")
PASSWORD = "correct horse battery staple"
BATCH = 100
LIST_DOORS = 60


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class World(msgspec.Struct):
    campaign_id: int
    user_id: int
    list_id: int
    addresses: list[int]
    access_token: str = ""


async def _seed(sessionmaker: Any, settings: Any) -> World:
    from server.accounts.security import build_jwt_auth
    from server.accounts.services import AccountService
    from server.campaigns.schemas import CampaignCreate
    from server.campaigns.services import create_campaign

    async with sessionmaker() as session:
        campaign = await create_campaign(session, CampaignCreate(name="Bench", slug="bench"), None)
        accounts = AccountService(session, settings, build_jwt_auth(SECRET, 15))
        user = await accounts.create_user("canvasser@example.org", "Cam", PASSWORD)
        await accounts.add_member(user, campaign.id, Role.canvasser)
        session.add(Survey(
            campaign_id=campaign.id, name="Doorstep", version=1,
            questions=[
                {"key": "vote", "kind": "choice", "label": "How will you vote?", "choices": ["lab", "con", "ld", "grn", "ref", "none"]},
                {"key": "certainty", "kind": "scale", "label": "How certain?", "min": 1, "max": 10},
                {"key": "issue", "kind": "choice", "label": "Top issue", "choices": ["nhs", "housing", "cost", "crime", "environment"]},
                {"key": "poster", "kind": "yesno", "label": "Would you display a poster?"},
                {"key": "volunteer", "kind": "yesno", "label": "Would you like to volunteer?"},
            ],
        ))
        walk_list = WalkList(campaign_id=campaign.id, name="Bench list", status="assigned", doors=LIST_DOORS)
        session.add(walk_list)
        await session.flush()
        rows = [
            {
                "campaign_id": campaign.id,
                "lines": [f"{d + 1} Benchmark Road", "Testbury"],
                "postcode": f"TB{d % 9 + 1} {d % 7 + 1}AB",
                "lon": -1.5 + d * 0.0001,
                "lat": 52.0 + (d % 50) * 0.0001,
                "building_key": f"bench-{d}",
                "street": "Benchmark Road",
                "house_number": str(d + 1),
            }
            for d in range(600)
        ]
        await session.execute(insert(Address), rows)
        addresses = list(await session.scalars(
            select(Address.id).where(Address.campaign_id == campaign.id).order_by(Address.id)))
        people = []
        for n, address_id in enumerate(addresses[:LIST_DOORS]):
            session.add(WalkListStop(walk_list_id=walk_list.id, address_id=address_id, stop_number=n, position=n))
            for p in range(2):
                people.append({
                    "campaign_id": campaign.id, "address_id": address_id, "polling_district": "AB",
                    "elector_number": 2 * n + p, "surname": f"Surname{n}", "forenames": ["Alex", "Sam"][p],
                })
        await session.execute(insert(Person), people)
        session.add(Assignment(walk_list_id=walk_list.id, user_id=user.id))
        # the doors the throughput phase knocks: a second list held by the canvasser, so every push
        # passes the write-scope check (contract D) as a real canvasser's does
        work = WalkList(campaign_id=campaign.id, name="Work list", status="assigned", doors=len(addresses) - LIST_DOORS)
        session.add(work)
        await session.flush()
        await session.execute(insert(WalkListStop), [
            {"walk_list_id": work.id, "address_id": a, "stop_number": n, "position": n}
            for n, a in enumerate(addresses[LIST_DOORS:])
        ])
        session.add(Assignment(walk_list_id=work.id, user_id=user.id))
        organiser = await accounts.create_user("organiser@example.org", "Org", PASSWORD)  # campaign-wide writer
        await accounts.add_member(organiser, campaign.id, Role.organiser)
        await session.commit()
        return World(campaign_id=campaign.id, user_id=user.id, list_id=walk_list.id, addresses=addresses)


class Phone(msgspec.Struct):
    node_id: str
    token: str
    clock: Any
    next_seq: int = 1

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Canvass-Protocol": "1",
                "Content-Type": "application/json"}

    def batch(self, addresses: list[int], size: int) -> bytes:
        envelopes = []
        for _ in range(size):
            address = addresses[self.next_seq % len(addresses)]
            envelopes.append(Envelope(seq=self.next_seq, mutation=RecordContactAttempt(
                id=uuid.uuid4(), address_id=address, outcome="not_home", at=self.clock.now().encode())))
            self.next_seq += 1
        return msgspec.json.encode(PushRequest(protocol_version=1, device_id=self.node_id, mutations=envelopes))


async def _register(client: Any, world: World, count: int) -> list[Phone]:
    phones = []
    for n in range(count):
        response = await client.post(f"/api/campaigns/{world.campaign_id}/devices", json={"name": f"p{n}"},
                                     headers={"Authorization": f"Bearer {world.access_token}"})
        assert response.status_code == 201, response.text
        token = response.json()
        phones.append(Phone(node_id=token["node_id"], token=token["token"], clock=HybridClock(token["node_id"])))
    return phones


class _Statuses(msgspec.Struct):
    status: str


class _PushAnswer(msgspec.Struct):
    results: list[_Statuses]


_answer_decoder = msgspec.json.Decoder(_PushAnswer)


async def _push_lean(session: Any, phone: Phone, body: bytes) -> None:
    """The throughput phase's push: aiohttp (C HTTP parser) and msgspec, so that the load
    generator, which shares this machine's two cores with the server, takes as little of them
    as it can (httpx's pure-Python parsing took about 2 ms of CPU per push)."""
    async with session.post("/api/sync/push", data=body, headers=phone.headers()) as response:
        content = await response.read()
        assert response.status == 200, content[:500]
    assert all(r.status == "applied" for r in _answer_decoder.decode(content).results), content[:500]


async def _push(client: Any, phone: Phone, body: bytes) -> None:
    response = await client.post("/api/sync/push", content=body, headers=phone.headers())
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert all(r["status"] == "applied" for r in results), results[:3]


def _cpu_seconds() -> dict[int, tuple[float, bytes]]:
    """CPU seconds (user + system) and command line of every process, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                table[int(entry.name)] = ((int(fields[11]) + int(fields[12])) / tick, (entry / "cmdline").read_bytes())
            except (OSError, IndexError, ValueError):
                continue
    return table


def _host_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _cpu_split(before: dict[int, tuple[float, bytes]], after: dict[int, tuple[float, bytes]],
               servers: list[int], pushes: int) -> dict[str, float]:
    """CPU milliseconds per push spent by the server's processes, PostgreSQL's and this client.

    PostgreSQL's: every process named ``postgres`` (backends, WAL writer, checkpointer),
    counted from zero for a backend that started during the phase.
    """
    def spent(pid: int) -> float:
        return after[pid][0] - before.get(pid, (0.0, b""))[0]

    postgres = sum(spent(pid) for pid, (_, cmd) in after.items() if cmd.startswith(b"postgres"))
    return {
        "server": round(sum(spent(pid) for pid in servers if pid in after) * 1000 / pushes, 2),
        "postgres": round(postgres * 1000 / pushes, 2),
        "client": round(spent(os.getpid()) * 1000 / pushes, 2),
    }


async def bench_backend(url: str, args: argparse.Namespace) -> dict[str, Any]:
    backend = "pg" if url.startswith("postgresql") else "sqlite"
    await upgrade_database_async(url)
    settings = load_settings(environ={}, database_url=url, secret_key=SECRET)  # for seeding; the server reads its env
    engine = create_engine_for(url)
    sessionmaker = create_sessionmaker(engine)
    result: dict[str, Any] = {}
    try:
        world = await _seed(sessionmaker, settings)
        port = free_port()
        workers = args.workers if backend == "pg" else 1
        server = start_server(url, port, workers)
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base)
        limits = httpx.Limits(max_connections=args.concurrency + 4, max_keepalive_connections=args.concurrency + 4)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
            login = await client.post("/api/auth/login", json={"email": "canvasser@example.org", "password": PASSWORD})
            assert login.status_code == 200, login.text
            world.access_token = login.json()["access_token"]
            phones = await _register(client, world, args.devices)
            _log(f"[{backend}] {len(phones)} devices registered; server: {workers} worker(s) on {base}")

            # 1. throughput: every device pushes `batches` batches of 100, `concurrency` at a time
            targets = world.addresses[LIST_DOORS:]  # the measured list's doors stay untouched
            bodies = [(phone, phone.batch(targets, BATCH)) for _ in range(args.batches) for phone in phones]
            queue: asyncio.Queue[tuple[Phone, bytes]] = asyncio.Queue()
            for item in bodies:
                queue.put_nowait(item)

            connector = aiohttp.TCPConnector(limit=args.concurrency)
            async with aiohttp.ClientSession(base, connector=connector) as lean:

                async def worker() -> None:
                    while not queue.empty():
                        phone, body = queue.get_nowait()
                        await _push_lean(lean, phone, body)

                serving = worker_pids(server.pid) or [server.pid]  # one worker: uvicorn serves in the master
                cpu_before, busy_before = _cpu_seconds(), _host_busy()
                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(args.concurrency)))
                elapsed = time.perf_counter() - started
                cpu_after, busy_after = _cpu_seconds(), _host_busy()
            result[f"{backend}_cpu_ms_per_push"] = _cpu_split(cpu_before, cpu_after, serving, len(bodies))
            result[f"{backend}_host_busy_pct"] = round(
                100 * (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1]), 1)
            applied = len(bodies) * BATCH
            async with sessionmaker() as session:
                stored = int(await session.scalar(select(func.count()).select_from(ContactAttempt)) or 0)
            assert stored == applied, (stored, applied)
            rate = applied / elapsed
            result[f"{backend}_mutations_per_s"] = round(rate, 1)
            _log(f"[{backend}] push path: {applied} mutations in {elapsed:.2f}s = {rate:,.0f}/s; CPU ms per push "
                 f"{result[f'{backend}_cpu_ms_per_push']}, host busy {result[f'{backend}_host_busy_pct']}%")

            # 1b. the cost of the write-scope check, in this run: the same pushes from canvasser phones
            # (scoped) and organiser phones (campaign-wide: no scope look-up), alternated, best of each
            organiser_login = await client.post("/api/auth/login", json={"email": "organiser@example.org", "password": PASSWORD})
            organiser_world = msgspec.structs.replace(world, access_token=organiser_login.json()["access_token"])
            sample = max(1, min(args.devices, 40))
            crew = {"scoped": phones[:sample], "campaign_wide": await _register(client, organiser_world, sample)}
            best: dict[str, float] = {"scoped": 0.0, "campaign_wide": 0.0}
            async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=args.concurrency)) as lean:
                for _round in range(2):
                    for kind in ("scoped", "campaign_wide"):
                        work = [(phone, phone.batch(targets, BATCH)) for _ in range(args.batches) for phone in crew[kind]]
                        pending: asyncio.Queue[tuple[Phone, bytes]] = asyncio.Queue()
                        for item in work:
                            pending.put_nowait(item)

                        async def drain(q: asyncio.Queue[tuple[Phone, bytes]] = pending) -> None:
                            while not q.empty():
                                phone, body = q.get_nowait()
                                await _push_lean(lean, phone, body)

                        t0 = time.perf_counter()
                        await asyncio.gather(*(drain() for _ in range(args.concurrency)))
                        best[kind] = max(best[kind], len(work) * BATCH / (time.perf_counter() - t0))
            result[f"{backend}_scope_check_cost_pct"] = round(
                100 * (best["campaign_wide"] - best["scoped"]) / best["campaign_wide"], 1)
            _log(f"[{backend}] scope check: scoped {best['scoped']:,.0f}/s, campaign-wide {best['campaign_wide']:,.0f}/s, "
                 f"cost {result[f'{backend}_scope_check_cost_pct']}%")

            # 2. raw bulk INSERT of the same number of equivalent rows, same table, same database
            clock = HybridClock("raw")
            now = datetime.now(UTC)
            rows = [
                {"id": str(uuid.uuid4()), "campaign_id": world.campaign_id,
                 "address_id": targets[n % len(targets)], "person_id": None,
                 "hlc": clock.now().encode(), "user_id": world.user_id, "device_id": None,
                 "walk_list_id": None, "outcome": "not_home", "at": now}
                for n in range(applied)
            ]
            started = time.perf_counter()
            async with engine.begin() as conn:
                await conn.execute(insert(ContactAttempt.__table__), rows)
            raw_elapsed = time.perf_counter() - started
            raw_rate = applied / raw_elapsed
            result[f"{backend}_raw_insert_rows_per_s"] = round(raw_rate, 1)
            result[f"{backend}_ratio_to_raw_insert"] = round(rate / raw_rate, 3)
            _log(f"[{backend}] raw bulk insert: {applied} rows in {raw_elapsed:.2f}s = {raw_rate:,.0f}/s")

            # 3. latency of a 50-mutation push, sequential, one phone
            phone = phones[0]
            samples = []
            for _ in range(args.latency_samples):
                body = phone.batch(targets, 50)
                t0 = time.perf_counter()
                await _push(client, phone, body)
                samples.append((time.perf_counter() - t0) * 1000)
            samples.sort()
            p95 = samples[max(0, round(0.95 * len(samples)) - 1)]
            result[f"{backend}_push_p95_ms"] = round(p95, 1)
            result[f"{backend}_push_median_ms"] = round(statistics.median(samples), 1)
            _log(f"[{backend}] 50-mutation push: median {statistics.median(samples):.1f} ms, p95 {p95:.1f} ms")

            # 4. initial download of the 60-door list: first pull page + list pages, gzipped
            fresh = (await _register(client, world, 1))[0]
            total = 0
            raw_total = 0
            response = await client.post("/api/sync/pull", headers=fresh.headers(), content=msgspec.json.encode(
                {"protocol_version": 1, "device_id": fresh.node_id, "cursor": None, "limit": 500}))
            assert response.status_code == 200
            first = response.json()
            # the scope part of the first page (this walk list + survey) belongs to the list download
            scope_part = [c for c in first["changes"] if c["entity"] == "survey"
                          or (c["entity"] == "walk_list" and c["id"] == str(world.list_id))]
            body = msgspec.json.encode({"changes": scope_part, "cursor": first["cursor"], "has_more": False,
                                        "checksums": {str(world.list_id): first.get("checksums", {}).get(str(world.list_id))}})
            total += len(gzip.compress(body))
            raw_total += len(body)
            token = None
            pages = 0
            while True:
                path = f"/api/sync/lists/{world.list_id}" + (f"?page_token={token}" if token else "")
                response = await client.get(path, headers=fresh.headers())
                assert response.status_code == 200, response.text
                total += len(gzip.compress(response.content))
                raw_total += len(response.content)
                pages += 1
                token = response.json()["next_page_token"]
                if not token:
                    break
            result[f"{backend}_initial_list_bytes_gzip"] = total
            result[f"{backend}_initial_list_bytes_raw"] = raw_total
            _log(f"[{backend}] 60-door list: {pages} pages, {raw_total} bytes JSON, {total} bytes gzipped")
            result[f"{backend}_server_rss_mb"] = round(max(rss_mb(p) for p in serving), 1)
    finally:
        if "server" in locals():
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        await engine.dispose()
    return result


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "push_path": "HTTP over 127.0.0.1 to uvicorn (pg: --workers processes, sqlite: 1)",
        "workers": args.workers,
        "devices": args.devices,
        "batch": BATCH,
        "batches_per_device": args.batches,
        "concurrency": args.concurrency,
    }
    if args.only in (None, "postgresql"):
        name = f"canvass_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        await _pg_admin(f'CREATE DATABASE "{name}"')
        try:
            metrics.update(await bench_backend(f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}", args))
        finally:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            metrics.update(await bench_backend(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}", args))
    if "pg_push_p95_ms" in metrics:
        metrics["push_p95_ms"] = metrics["pg_push_p95_ms"]
        metrics["scope_check_cost_pct"] = metrics["pg_scope_check_cost_pct"]
        metrics["initial_list_bytes_gzip"] = metrics["pg_initial_list_bytes_gzip"]
    elif "sqlite_push_p95_ms" in metrics:
        metrics["push_p95_ms"] = metrics["sqlite_push_p95_ms"]
        metrics["initial_list_bytes_gzip"] = metrics["sqlite_initial_list_bytes_gzip"]
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--batches", type=int, default=5,
                        help="batches of 100 per device (5: about 10 s of steady pushing; 1 is mostly warm-up)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes on PostgreSQL")
    parser.add_argument("--latency-samples", type=int, default=40)
    parser.add_argument("--only", choices=["postgresql", "sqlite"])
    args = parser.parse_args()
    metrics = asyncio.run(main_async(args))
    print(json.dumps(metrics, sort_keys=True))


if __name__ == "__main__":
    main()
