"""Crash safety: the server process is SIGKILLed during pushes, again and again.

A real server (uvicorn, one worker, ``server.app:app_factory --factory``) on
a fresh database is killed with SIGKILL at a random moment while four phones
(``sync.client.SyncClient`` over httpx) push events and edits concurrently,
then restarted; the phones keep retrying whatever was not acknowledged. At
the end every mutation each phone queued was acknowledged exactly once: one
``MutationResult`` row per (device, seq), one row per event id, the device
receipt equal to the highest seq, and every acknowledged event stored.

Start-up dominates the cost, so the database is migrated and seeded once
(no demo load per restart) and the server runs a single worker.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from server.app import ROUTE_HANDLERS, create_app
from server.db.migrate import upgrade_database_async
from server.db.models import (
    Address,
    Answer,
    Assignment,
    ContactAttempt,
    Device,
    DeviceReceipt,
    Person,
    Survey,
    WalkList,
    WalkListStop,
)
from server.db.models import MutationResult as MutationResultRow
from server.db.session import create_engine_for, create_sessionmaker
from server.sync.controllers import SyncController
from sync.client import SyncClient
from sync.clock import HybridClock
from tests.conftest import PG_HOST, PG_PORT, PG_USER, TEST_PASSWORD, _pg_admin

KILLS = int(os.environ.get("CANVASS_CRASH_KILLS", "50"))
PHONES = 4
REPO = Path(__file__).resolve().parents[2]
SECRET = "crash-test-secret-" + "y" * 32


def app_with_sync():  # type: ignore[no-untyped-def]
    """ASGI factory for the subprocess: the real app, with the sync routes if not registered yet."""
    app = create_app()
    if not any(route.path == "/api/sync/push" for route in app.routes):
        app.register(SyncController)
    return app


FACTORY = (
    "server.app:app_factory"
    if SyncController in ROUTE_HANDLERS
    else "tests.sync.test_crash_safety:app_with_sync"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ZYGOTE = r"""
import os, sys, uvicorn
import importlib
module, _, name = sys.argv[1].partition(":")
factory = getattr(importlib.import_module(module), name)  # the slow imports happen once, here
factory()  # and the lazy ones (route and schema set-up); each server still builds its own app
port = int(sys.argv[2])
print("ready", flush=True)
for line in sys.stdin:
    while True:  # reap killed servers
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                break
        except ChildProcessError:
            break
    pid = os.fork()
    if pid == 0:
        sys.stdin.close()
        try:
            uvicorn.run(factory(), host="127.0.0.1", port=port, workers=1, log_level="warning",
                        access_log=False, lifespan="on")
        finally:
            os._exit(0)
    print(pid, flush=True)
"""


class Server:
    """A uvicorn server process on a fixed port; ``kill`` is SIGKILL, nothing graceful.

    Importing the app takes seconds on a loaded machine (pandas, geopandas),
    so a zygote process imports it once and forks each server from there:
    every server is still its own process, started cold (new event loop,
    new engine and connections) and killed with SIGKILL.
    """

    def __init__(self, database_url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "CANVASS_DATABASE_URL": database_url,
            "CANVASS_SECRET_KEY": SECRET,
            "CANVASS_ARGON2_PROFILE": "test",
            "CANVASS_SYNC_RATE_PER_MINUTE": "1000000",
            "CANVASS_AUTH_RATE_PER_MINUTE": "10000",
            "PYTHONPATH": str(REPO),
        }
        self.zygote = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, FACTORY, str(self.port)],
            cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.zygote.stdout is not None and self.zygote.stdout.readline().strip() == "ready"
        self.pid: int | None = None
        self.starts = 0

    async def start(self) -> None:
        assert self.zygote.stdin is not None and self.zygote.stdout is not None
        self.zygote.stdin.write("fork\n")
        self.zygote.stdin.flush()
        self.pid = int(self.zygote.stdout.readline())
        self.starts += 1
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                try:
                    if (await http.get(self.base + "/health", timeout=1)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.02)
        raise RuntimeError("server did not become ready")

    def kill(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None

    def close(self) -> None:
        self.kill()
        if self.zygote.stdin is not None:
            self.zygote.stdin.close()
        self.zygote.wait(timeout=30)


async def _seed(database_url: str) -> tuple[int, list[int], dict[int, list[int]]]:
    """A campaign with one walk list of ten doors, two electors each, and a canvasser (once)."""
    from server.accounts.security import build_jwt_auth
    from server.accounts.services import AccountService
    from server.campaigns.schemas import CampaignCreate
    from server.campaigns.services import create_campaign
    from server.db.models import Role
    from server.settings import load_settings

    settings = load_settings(environ={}, database_url=database_url, secret_key=SECRET)
    engine = create_engine_for(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            campaign = await create_campaign(session, CampaignCreate(name="Crash", slug="crash"), None)
            accounts = AccountService(session, settings, build_jwt_auth(SECRET, 15))
            user = await accounts.create_user("canvasser@example.org", "C", TEST_PASSWORD)
            await accounts.add_member(user, campaign.id, Role.canvasser)
            # answers are checked against the campaign's survey (contract G)
            session.add(Survey(campaign_id=campaign.id, name="S", version=1,
                               questions=[{"key": "vote", "kind": "choice", "choices": ["lab", "con"]}]))
            walk_list = WalkList(campaign_id=campaign.id, name="L", status="assigned", doors=10)
            session.add(walk_list)
            await session.flush()
            addresses: list[int] = []
            people: dict[int, list[int]] = {}
            for d in range(10):
                address = Address(campaign_id=campaign.id, lines=[f"{d} Kill Street"], postcode="AB1 2CD",
                                  lon=-1.5, lat=52.0, building_key=f"k{d}", street="Kill Street",
                                  house_number=str(d))
                session.add(address)
                await session.flush()
                addresses.append(address.id)
                session.add(WalkListStop(walk_list_id=walk_list.id, address_id=address.id,
                                         stop_number=d, position=d))
                people[address.id] = []
                for p in range(2):
                    person = Person(campaign_id=campaign.id, address_id=address.id, surname=f"S{d}{p}",
                                    forenames="A", elector_number=10 * d + p)
                    session.add(person)
                    await session.flush()
                    people[address.id].append(person.id)
            session.add(Assignment(walk_list_id=walk_list.id, user_id=user.id))
            await session.commit()
            return campaign.id, addresses, people
    finally:
        await engine.dispose()


def _transport(http: httpx.AsyncClient, base: str):  # type: ignore[no-untyped-def]
    async def transport(method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        response = await http.request(method, base + path, content=body or None, headers=headers, timeout=10)
        return response.status_code, response.content

    return transport


async def _register_phones(server: Server, campaign_id: int, http: httpx.AsyncClient) -> list[SyncClient]:
    login = await http.post(server.base + "/api/auth/login",
                            json={"email": "canvasser@example.org", "password": TEST_PASSWORD})
    assert login.status_code == 200, login.text
    access = login.json()["access_token"]
    phones = []
    for n in range(PHONES):
        response = await http.post(f"{server.base}/api/campaigns/{campaign_id}/devices",
                                   json={"name": f"phone {n}"}, headers={"Authorization": f"Bearer {access}"})
        assert response.status_code == 201, response.text
        token = response.json()
        phones.append(SyncClient(token["node_id"], token["token"], _transport(http, server.base),
                                 HybridClock(token["node_id"]), batch_size=25, rng=random.Random(n)))
    return phones


async def _keep_pushing(phone: SyncClient, rng: random.Random, addresses: list[int],
                        people: dict[int, list[int]]) -> None:
    """Queue a little new work and push, over and over, until cancelled (a phone in the field)."""
    while True:
        for _ in range(rng.randint(1, 30)):
            address = rng.choice(addresses)
            person = rng.choice(people[address])
            if rng.random() < 0.2:
                phone.edit_field("person", person, "note", f"n{rng.randrange(10**6)}")
            elif rng.random() < 0.5:
                phone.record_answer(address, "vote", rng.choice(["lab", "con"]), person_id=person)
            else:
                phone.record_contact(address, "spoke", person_id=person)
        if not (await phone.push()).ok:
            await asyncio.sleep(0.05)  # server down: like a phone, wait a little before retrying


async def crash_scenario(database_url: str, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    await upgrade_database_async(database_url)
    campaign_id, addresses, people = await _seed(database_url)
    server = Server(database_url)
    # A fresh connection pool per server life: requests cancelled mid-flight can leak pool
    # slots in httpx, and a real phone reconnects after a failure anyway.
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=0)

    def connect(phones: list[SyncClient]) -> httpx.AsyncClient:
        http = httpx.AsyncClient(limits=limits)
        for phone in phones:
            phone.transport = _transport(http, server.base)
        return http

    try:
        await server.start()
        async with httpx.AsyncClient(limits=limits) as http:
            phones = await _register_phones(server, campaign_id, http)
        for _ in range(kills):
            if server.pid is None:
                await server.start()
            http = connect(phones)
            tasks = [asyncio.create_task(_keep_pushing(p, random.Random(rng.random()), addresses, people))
                     for p in phones]
            await asyncio.sleep(rng.uniform(0.02, 0.5))  # somewhere in the middle of pushes
            server.kill()
            await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await http.aclose()
        await server.start()
        http = connect(phones)
        try:
            for phone in phones:  # after the last restart every phone drains its outbox
                for _ in range(20):
                    if (await phone.push()).ok and not phone.outbox:
                        break
                assert phone.outbox == [], phone.last_error
        finally:
            await http.aclose()
    finally:
        server.close()
    assert server.starts == kills + 1

    engine = create_engine_for(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            total_events = 0
            for phone in phones:
                device_id = await session.scalar(select(Device.id).where(Device.node_id == phone.device_id))
                seqs = list(await session.scalars(
                    select(MutationResultRow.seq).where(MutationResultRow.device_id == device_id)
                    .order_by(MutationResultRow.seq)))
                issued = list(range(1, phone.state.next_seq))
                assert seqs == issued  # every mutation processed, each exactly once
                receipt = await session.get(DeviceReceipt, device_id)
                assert receipt is not None and receipt.last_seq == issued[-1]
                statuses = set(await session.scalars(
                    select(MutationResultRow.status).where(MutationResultRow.device_id == device_id)))
                assert statuses <= {"applied", "conflict", "duplicate"}, statuses
                assert phone.rejections == []
                for entity, model in (("contact_attempt", ContactAttempt), ("answer", Answer)):
                    ids = [key for key, event in phone.state.local_events.items()
                           if (entity == "answer") == (type(event).__name__ == "RecordAnswer")]
                    total_events += len(ids)
                    for chunk in range(0, len(ids), 500):
                        part = ids[chunk: chunk + 500]
                        stored = (await session.execute(
                            select(model.id, func.count()).where(model.id.in_(part)).group_by(model.id))).all()
                        assert len(stored) == len(part) and all(n == 1 for _, n in stored)
            stored_total = sum([
                int(await session.scalar(select(func.count()).select_from(ContactAttempt)) or 0),
                int(await session.scalar(select(func.count()).select_from(Answer)) or 0),
            ])
            assert stored_total == total_events  # nothing extra either
            assert total_events > kills  # the phones really were pushing while the server died
    finally:
        await engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:  # type: ignore[misc]
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'crash.sqlite3'}"
        return
    name = f"canvass_crash_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError) as exc:
        if os.environ.get("CANVASS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL not reachable: {exc!r}")
        pytest.skip(f"PostgreSQL not reachable: {exc!r}")
    yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.timeout(600)
def test_sigkill_during_pushes_loses_and_duplicates_nothing(fresh_database: str) -> None:
    """Kill the server at random moments while phones push; after retries all is there exactly once."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(crash_scenario(fresh_database, KILLS, seed=4))
    finally:
        loop.close()
