"""Load test: hundreds of phones syncing at once against the real server on PostgreSQL.

Run: `python -m bench.load [--phones 500] [--lists 50] [--workers N] [--rounds 2] [--gap 120] [--ramp 180] [--duration 270]`,
or through a load balancer: `python -m bench.load --instances 3 [--kill-at 60] [--restart-after 5]`.

1. Creates a fresh PostgreSQL database (127.0.0.1:5432, user postgres), migrates it,
   loads the demo town, cuts `--lists` walk lists by street order directly in the
   database, creates one canvasser account and device per phone (rows written
   directly, device tokens minted with the server's key) and assigns each list to
   `phones / lists` canvassers.
2. Starts the server as `--workers` uvicorn worker processes on 127.0.0.1; or, with
   `--instances N`, N `canvass serve` processes (one each) behind Debian's HAProxy
   (`bench.cluster`), rate limits in Redis (`--store-url`), and SIGKILLs one instance
   `--kill-at` seconds into the load (default: half of `--duration`; negative: never),
   restarting it `--restart-after` seconds later.
3. Drives `--phones` reference clients (`sync.client.SyncClient` over httpx): a first
   pull (feed plus list download), then `--rounds` sync rounds at random intervals
   (knocks, answers, a do-not-visit now and then, phone-number edits that sometimes
   collide with a teammate's), push then pull each round; bounded by rounds and by
   `--duration` seconds.
4. Quiesces (every phone pushes what is left and pulls until nothing is new), then
   checks: every acknowledged event is in the database exactly once, every
   acknowledged edit is either the current value's version or a kept conflict,
   and every phone's view of its list equals the server's (converged).
5. Stops the server and drops the database.

Progress goes to stderr; the last stdout line is one JSON object:
devices, requests, errors, p50_ms, p95_ms, p99_ms, lost_writes, converged,
server_rss_mb (peak resident memory per worker process) and more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parents[1]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
SECRET = "bench-load-secret-" + "k" * 40
OUTCOMES = ("spoke", "not_home", "not_home", "not_home", "refused", "come_back")


def log(message: str) -> None:
    """Progress line on stderr."""
    print(f"[load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def app_factory():  # type: ignore[no-untyped-def]
    """The production app, with the sync routes registered if the factory does not include them yet."""
    from server.app import create_app
    from server.sync.controllers import SyncController

    app = create_app()
    if not any(route.path == "/api/sync/push" for route in app.routes):
        app.register(SyncController)
    return app


# ------------------------------------------------------------------ database


async def create_database(name: str) -> str:
    """A fresh database; returns its SQLAlchemy URL."""
    conn = await asyncpg.connect(database="postgres", timeout=10, **PG)  # type: ignore[arg-type]
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{PG['user']}@{PG['host']}:{PG['port']}/{name}"


async def drop_database(name: str) -> None:
    """Drop the bench database (with any connection still open)."""
    conn = await asyncpg.connect(database="postgres", timeout=10, **PG)  # type: ignore[arg-type]
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class Phone:
    """One simulated phone: its account, device, list and reference client."""

    user_id: int
    device_id: int
    node_id: str
    token: str
    list_id: int
    addresses: list[int] = field(default_factory=list)
    client: Any = None
    acked: dict[int, tuple[Any, str]] = field(default_factory=dict)  # seq -> (mutation, status)


async def arrange(url: str, phones: int, lists: int) -> tuple[int, list[Phone], int]:
    """Demo town, walk lists, canvassers, devices and assignments, written directly for speed."""
    from server.accounts.security import build_jwt_auth
    from server.db.models import (
        Address,
        Assignment,
        Device,
        Membership,
        Person,
        Role,
        Survey,
        User,
        WalkList,
        WalkListStop,
    )
    from server.db.session import create_engine_for, create_sessionmaker
    from server.demo import load_demo

    engine = create_engine_for(url)
    jwt_auth = build_jwt_auth(SECRET, 15)
    try:
        async with create_sessionmaker(engine)() as session:
            summary = await load_demo(session)
            cid = summary.campaign_id
            await session.commit()
            rows = (
                await session.execute(
                    select(Address.id)
                    .where(Address.campaign_id == cid, Address.id.in_(select(Person.address_id)))
                    .order_by(Address.street, Address.house_number, Address.id)
                )
            ).scalars().all()
            size = max(1, len(rows) // lists)
            list_ids: list[int] = []
            list_addresses: dict[int, list[int]] = {}
            for n in range(lists):
                chunk = list(rows[n * size : (n + 1) * size])
                walk_list = WalkList(campaign_id=cid, name=f"Load list {n + 1}", status="assigned", doors=len(chunk))
                session.add(walk_list)
                await session.flush()
                list_ids.append(walk_list.id)
                list_addresses[walk_list.id] = chunk
                await session.execute(
                    insert(WalkListStop),
                    [{"walk_list_id": walk_list.id, "address_id": a, "stop_number": i, "position": i} for i, a in enumerate(chunk)],
                )
            users = (
                await session.execute(
                    insert(User).returning(User.id),
                    [{"email": f"phone{i}@load.canvass", "display_name": f"Phone {i}", "password_hash": None} for i in range(phones)],
                )
            ).scalars().all()
            await session.execute(
                insert(Membership), [{"user_id": u, "campaign_id": cid, "role": Role.canvasser} for u in users]
            )
            node_ids = [uuid.uuid4().hex[:16] for _ in users]
            devices = (
                await session.execute(
                    insert(Device).returning(Device.id),
                    [{"user_id": u, "campaign_id": cid, "name": "load phone", "node_id": n} for u, n in zip(users, node_ids, strict=True)],
                )
            ).scalars().all()
            assigned = [list_ids[i % lists] for i in range(phones)]
            await session.execute(
                insert(Assignment), [{"walk_list_id": w, "user_id": u} for u, w in zip(users, assigned, strict=True)]
            )
            survey_id = int(await session.scalar(select(Survey.id).where(Survey.campaign_id == cid)) or 0)
            await session.commit()
    finally:
        await engine.dispose()
    result = []
    for user_id, device_id, node_id, list_id in zip(users, devices, node_ids, assigned, strict=True):
        token = jwt_auth.create_token(
            identifier=str(user_id), token_expiration=timedelta(days=1), token_unique_jwt_id=uuid.uuid4().hex,
            token_extras={"dev": device_id},
        )
        result.append(Phone(user_id, device_id, node_id, token, list_id, list_addresses[list_id]))
    return cid, result, survey_id


# ------------------------------------------------------------------ server


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    """uvicorn with `workers` processes on 127.0.0.1 (its own process group, stopped with it)."""
    env = {
        **os.environ,
        "CANVASS_DATABASE_URL": url,
        "CANVASS_SECRET_KEY": SECRET,
        "CANVASS_SYNC_RATE_PER_MINUTE": "1000000",
        "CANVASS_AUTH_RATE_PER_MINUTE": "1000000",
    }
    command = [
        sys.executable, "-m", "uvicorn", "bench.load:app_factory", "--factory", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log",
        "--limit-concurrency", "2000", "--backlog", "4096",
        # keep idle connections longer than the client does (httpx: 5 s, like uvicorn's default),
        # so the client never reuses a connection the server is closing at that moment
        "--timeout-keep-alive", "15",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def worker_pids(master: int) -> list[int]:
    """Child processes of the uvicorn master (the workers), from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                cmdline = (entry / "cmdline").read_bytes()
                if b"resource_tracker" not in cmdline:
                    pids.append(int(entry.name))
    return pids


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (VmRSS), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def wait_ready(base: str, timeout: float = 60) -> None:
    """Poll /health until the server answers."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{base}/health", timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError("server did not become ready")


# ------------------------------------------------------------------ phones


class Meter:
    """Latency and status of every HTTP request the phones make."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.by_kind: dict[str, list[float]] = {}
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []

    def transport(self, http: httpx.AsyncClient):  # type: ignore[no-untyped-def]
        """A SyncClient transport over httpx that records each request."""

        async def send(method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
            started = time.perf_counter()
            try:
                response = await http.request(method, path, content=body or None, headers=headers)
            except httpx.HTTPError as exc:
                self.errors.append(f"{method} {path}: {exc!r}")
                self.statuses[0] += 1
                raise
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.latencies.append(elapsed_ms)
            kind = "list" if path.startswith("/api/sync/lists/") else path.rsplit("/", 1)[-1]
            self.by_kind.setdefault(kind, []).append(elapsed_ms)
            self.statuses[response.status_code] += 1
            if response.status_code >= 400:
                self.errors.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
            return response.status_code, response.content

        return send


def canvass(phone: Phone, rng: random.Random, survey_id: int) -> None:
    """A few doors' work on the phone: knocks, answers, sometimes a do-not-visit or a phone-number edit."""
    client = phone.client
    people_by_address: dict[int, list[int]] = {}
    for pid, stored in client.state.entities.get("person", {}).items():
        people_by_address.setdefault(stored.data.get("address_id"), []).append(int(pid))
    for _ in range(rng.randint(1, 3)):
        address = rng.choice(phone.addresses)
        people = people_by_address.get(address, [])
        person = rng.choice(people) if people else None
        outcome = rng.choice(OUTCOMES)
        client.record_contact(address, outcome, person_id=person, walk_list_id=phone.list_id)
        if outcome == "spoke" and person is not None:
            client.record_answer(address, "voting_intention", rng.choice(["Red", "Green", "Don't know"]),
                                 person_id=person, walk_list_id=phone.list_id, survey_id=survey_id)
            if rng.random() < 0.3:
                client.edit_field("person", person, "phone", f"07700 9{rng.randint(0, 99999):05d}")
        if rng.random() < 0.03:
            client.record_observation(address, "do_not_visit", person_id=person)


def remember_acks(phone: Phone, before: dict[int, Any]) -> None:
    """Record the server's verdict on every mutation that left the outbox."""
    client = phone.client
    still = {e.seq for e in client.outbox}
    rejected = {r.seq: r.reason for r in client.rejections}
    conflicts = {r.seq for r in client.state.conflicts}
    for seq, mutation in before.items():
        if seq in still or seq in phone.acked:
            continue
        status = "rejected" if seq in rejected else "conflict" if seq in conflicts else "applied"
        phone.acked[seq] = (mutation, status)


async def sync_once(phone: Phone) -> bool:
    """Push then pull; True if both succeeded."""
    before = {e.seq: e.mutation for e in phone.client.outbox}
    pushed, pulled = await phone.client.sync(retries=2)
    remember_acks(phone, before)
    return pushed.ok and pulled is not None and pulled.ok


async def push_rest(phone: Phone) -> bool:
    """Push whatever is still queued (no pull)."""
    before = {e.seq: e.mutation for e in phone.client.outbox}
    pushed = await phone.client.push(retries=3)
    remember_acks(phone, before)
    return pushed.ok


async def drive(
    phone: Phone, rng: random.Random, survey_id: int, rounds: int, stop_at: float, mean_gap: float, ramp: float
) -> int:
    """One phone's bounded session: first pull, then rounds of canvass + sync at random intervals."""
    failures = 0
    await asyncio.sleep(rng.uniform(0, ramp))  # canvassers switch their phones on over a while, not all at once
    if not (await phone.client.pull(retries=2)).ok:
        failures += 1
    for _ in range(rounds):
        gap = rng.expovariate(1 / mean_gap)
        if time.monotonic() + gap >= stop_at:
            # this phone's next sync falls after the bound: its work waits for the quiescence.
            # (Sleeping until the bound instead woke every such phone at the same instant, a
            # herd of hundreds of syncs no field day produces, and the latencies measured that.)
            break
        await asyncio.sleep(gap)
        canvass(phone, rng, survey_id)
        if not await sync_once(phone):
            failures += 1
    return failures


# ------------------------------------------------------------------ checks


async def check(url: str, phones: list[Phone]) -> dict[str, Any]:
    """Lost writes (acknowledged but absent, or duplicated) and convergence of every phone with the server."""
    from server.db.models import Answer, Conflict, ContactAttempt, FieldVersion, Observation, Person
    from server.db.session import create_engine_for, create_sessionmaker
    from sync.protocol import EditField, RecordAnswer, RecordContactAttempt, RecordObservation

    models = {RecordContactAttempt: ContactAttempt, RecordAnswer: Answer, RecordObservation: Observation}
    engine = create_engine_for(url)
    lost: list[str] = []
    diverged: list[str] = []
    acked_events: dict[type, set[str]] = {m: set() for m in models.values()}
    edits: list[EditField] = []
    rejected = 0
    for phone in phones:
        for mutation, status in phone.acked.values():
            if status == "rejected":
                rejected += 1
            elif isinstance(mutation, EditField):
                edits.append(mutation)
            elif type(mutation) in models:
                acked_events[models[type(mutation)]].add(str(mutation.id))
    try:
        async with create_sessionmaker(engine)() as session:
            for model, ids in acked_events.items():
                stored = Counter((await session.execute(select(model.id))).scalars().all())
                lost += [f"{model.__tablename__} {i} missing" for i in ids if stored[i] == 0]
                lost += [f"{model.__tablename__} {i} stored {n} times" for i, n in stored.items() if n > 1]
                lost += [f"{model.__tablename__} {i} stored but never acknowledged" for i in set(stored) - ids]
            versions = {
                (e, i, f): h for e, i, f, h in (await session.execute(
                    select(FieldVersion.entity, FieldVersion.entity_id, FieldVersion.field, FieldVersion.hlc))).all()
            }
            losers = set((await session.execute(select(Conflict.entity, Conflict.entity_id, Conflict.field, Conflict.losing_hlc))).all())
            for edit in edits:
                key = (edit.entity, int(edit.entity_id), edit.field)
                if versions.get(key, "") < edit.hlc and (*key, edit.hlc) not in losers:
                    lost.append(f"edit {key} @ {edit.hlc} neither won nor kept as a conflict")
            people = {p.id: p for p in (await session.execute(select(Person))).scalars().all()}
            events_by_address: dict[str, dict[int, set[str]]] = {}
            for name, model in (("contact_attempt", ContactAttempt), ("answer", Answer), ("observation", Observation)):
                table: dict[int, set[str]] = {}
                for event_id, address_id in (await session.execute(select(model.id, model.address_id))).all():
                    table.setdefault(address_id, set()).add(event_id)
                events_by_address[name] = table
            total_events = 0
            for model in models.values():
                total_events += int(await session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        await engine.dispose()
    for phone in phones:
        client = phone.client
        for name, table in events_by_address.items():
            expected = set().union(*(table.get(a, set()) for a in phone.addresses))
            if set(client.events(name)) != expected:
                diverged.append(f"device {phone.device_id}: {name} differs ({len(client.events(name))} vs {len(expected)})")
        for pid in client.ids("person"):
            row = people.get(int(pid))
            local = client.get("person", pid)
            if row is None or local is None or local.get("phone") != row.phone:
                diverged.append(f"device {phone.device_id}: person {pid} phone differs")
        if client.outbox:
            diverged.append(f"device {phone.device_id}: {len(client.outbox)} mutations never acknowledged")
    return {
        "lost_writes": len(lost),
        "lost_examples": lost[:5],
        "rejected": rejected,
        "converged": not diverged,
        "divergence_examples": diverged[:5],
        "events_stored": total_events,
        "edits_acknowledged": len(edits),
    }


async def forget_namespace(store_url: str, namespace: str) -> None:
    """Delete this run's rate-limit keys from the shared store."""
    if not store_url.startswith(("redis://", "rediss://")):
        return
    import redis.asyncio as redis

    client = redis.Redis.from_url(store_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


# ------------------------------------------------------------------ main


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the figures."""
    name = f"canvass_load_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = await create_database(name)
    server: subprocess.Popen[bytes] | None = None
    cluster: Any = None
    namespace = f"canvass_load_{uuid.uuid4().hex[:8]}"
    kills: list[dict[str, Any]] = []
    try:
        from server.db.migrate import upgrade_database

        log(f"database {name}: migrating")
        await asyncio.to_thread(upgrade_database, url)
        log(f"arranging demo town, {args.lists} lists, {args.phones} canvassers and devices")
        _cid, phones, survey_id = await arrange(url, args.phones, args.lists)
        if args.instances:
            from bench.cluster import Cluster

            cluster = Cluster(args.instances, {
                "CANVASS_DATABASE_URL": url, "CANVASS_SECRET_KEY": SECRET, "CANVASS_STORE_URL": args.store_url,
                "CANVASS_STORE_NAMESPACE": namespace, "CANVASS_SYNC_RATE_PER_MINUTE": "1000000",
                "CANVASS_AUTH_RATE_PER_MINUTE": "1000000", "CANVASS_LOG_FORMAT": "json",
            })
            await asyncio.to_thread(cluster.start)
            base = cluster.url
            workers = [app.pid for app in cluster.apps]
            log(f"{args.instances} instances behind HAProxy on {base} (logs in {cluster.workdir})")
        else:
            port = free_port()
            server = start_server(url, port, args.workers)
            base = f"http://127.0.0.1:{port}"
            await wait_ready(base)
            workers = worker_pids(server.pid)
            log(f"server up on {base} with {len(workers)} workers")
        peak = dict.fromkeys(workers, 0.0)
        meter = Meter()
        limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=httpx.Timeout(60.0)) as http:
            from sync.client import SyncClient
            from sync.clock import HybridClock

            transport = meter.transport(http)
            rng = random.Random(args.seed)
            for phone in phones:
                phone.client = SyncClient(phone.node_id, phone.token, transport, HybridClock(phone.node_id),
                                          rng=random.Random(rng.random()), backoff_base=0.2, backoff_cap=2.0)

            async def sample_memory() -> None:
                while True:
                    for pid in peak:
                        peak[pid] = max(peak[pid], rss_mb(pid))
                    await asyncio.sleep(0.5)

            sampler = asyncio.create_task(sample_memory())
            started = time.monotonic()
            stop_at = started + args.duration
            kill_at = args.duration / 2 if args.kill_at is None else args.kill_at

            async def kill_one() -> None:
                victim = args.instances - 1
                await asyncio.sleep(kill_at)
                cluster.kill(victim)
                log(f"SIGKILLed instance {victim} at {time.monotonic() - started:.1f}s")
                kills.append({"instance": victim, "at_s": round(time.monotonic() - started, 1)})
                await asyncio.sleep(args.restart_after)
                cluster.restart(victim)
                await asyncio.to_thread(cluster.wait_ready, victim)
                peak[cluster.apps[victim].pid] = 0.0
                kills[-1]["back_at_s"] = round(time.monotonic() - started, 1)
                log(f"instance {victim} back at {kills[-1]['back_at_s']}s")

            killer = asyncio.create_task(kill_one()) if cluster is not None and args.instances > 1 and kill_at >= 0 else None
            log(f"driving {len(phones)} phones: {args.rounds} rounds each, mean gap {args.gap}s, at most {args.duration}s")
            failures = await asyncio.gather(*(
                drive(p, random.Random(rng.random()), survey_id, args.rounds, stop_at, args.gap, args.ramp) for p in phones
            ))
            load_seconds = time.monotonic() - started
            if killer is not None:
                await killer  # the instance is back before quiescence (a kill after the load still restarts it)
            load_requests = sum(meter.statuses.values())
            log(f"load phase: {load_requests} requests in {load_seconds:.1f}s; quiescing")
            latencies = list(meter.latencies)
            by_kind = {kind: sorted(values) for kind, values in meter.by_kind.items()}
            # Quiescence: every phone pushes what is left, then (all pushes done) every phone pulls everything.
            for _attempt in range(3):
                pending = [p for p in phones if p.client.outbox]
                if not pending:
                    break
                await asyncio.gather(*(push_rest(p) for p in pending))
            await asyncio.gather(*(p.client.pull(retries=3) for p in phones))
            sampler.cancel()
        log("checking writes and convergence")
        checks = await check(url, phones)
        latencies.sort()

        def pct(q: float) -> float:
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else 0.0

        return {
            "devices": len(phones),
            "instances": args.instances,
            "killed": kills,
            "workers": len(workers),
            "lists": args.lists,
            "requests": load_requests,
            "requests_total": sum(meter.statuses.values()),
            "errors": len(meter.errors) + sum(failures),
            "error_examples": meter.errors[:5],
            # of those: requests cut off in transit (a killed instance mid-response), which the phone retried
            "transport_errors": meter.statuses.get(0, 0),
            # syncs that still failed after the phone's own retries (work left for the next sync)
            "failed_syncs": sum(failures),
            "statuses": {str(k): v for k, v in sorted(meter.statuses.items())},
            "duration_s": round(load_seconds, 1),
            "rps": round(load_requests / load_seconds, 1) if load_seconds else 0.0,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "max_ms": round(latencies[-1], 1) if latencies else 0.0,
            "mean_ms": round(statistics.fmean(latencies), 1) if latencies else 0.0,
            "by_endpoint": {
                kind: {"n": len(v), "p50_ms": round(v[len(v) // 2], 1), "p99_ms": round(v[min(len(v) - 1, int(0.99 * len(v)))], 1)}
                for kind, v in sorted(by_kind.items())
            },
            **checks,
            "server_rss_mb": round(max(peak.values(), default=0.0), 1),
            "server_rss_mb_per_worker": [round(v, 1) for v in peak.values()],
            "host_cpus": os.cpu_count(),
            "host_loadavg_1m": round(os.getloadavg()[0], 2),  # other work on the host skews latency
        }
    finally:
        if cluster is not None:
            await asyncio.to_thread(cluster.stop)
            await forget_namespace(args.store_url, namespace)
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        await drop_database(name)
        log(f"dropped database {name}")


def main() -> None:
    """Parse options, run, print the JSON figures as the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=500)
    parser.add_argument("--lists", type=int, default=50)
    parser.add_argument("--workers", type=int, default=max(2, min(4, os.cpu_count() or 2)))
    parser.add_argument("--rounds", type=int, default=2, help="sync rounds per phone after the first pull")
    parser.add_argument("--gap", type=float, default=120.0, help="mean seconds between a phone's syncs (a phone on a round syncs every couple of minutes)")
    parser.add_argument("--ramp", type=float, default=180.0, help="phones switch on at random over this many seconds")
    parser.add_argument("--duration", type=float, default=270.0, help="upper bound of the load phase in seconds")
    parser.add_argument("--connections", type=int, default=100, help="HTTP connections shared by the phones")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--instances", type=int, default=0,
                        help="N `canvass serve` processes behind HAProxy instead of one uvicorn with --workers")
    parser.add_argument("--devices", type=int, dest="phones", default=argparse.SUPPRESS, help="same as --phones (the issue's spelling)")
    parser.add_argument("--store-url", default="redis://127.0.0.1:6379/0", help="shared rate-limit store of the instances")
    parser.add_argument("--kill-at", type=float, default=None,
                        help="with --instances: SIGKILL one instance this many seconds in (default: half of --duration; negative: never)")
    parser.add_argument("--restart-after", type=float, default=5.0, help="with --instances: seconds before the killed instance restarts")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
