"""Durable background jobs on PostgreSQL: a cut job outlives a SIGKILL of its worker and of the web process.

The worker is the real `canvass worker` command in a subprocess; the web process is the
test's app (and, for the web-process kill, a real `canvass serve`). A job whose worker
dies is queued again when the worker's heartbeat goes stale, runs on the next worker,
and completes once: one set of lists, each door on exactly one list.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import ImportJob, WalkList, WalkListStop
from server.demo import DEMO_PASSWORD
from server.settings import Settings, load_settings
from server.walklists.schemas import CutRequest
from server.walklists.services import run_cut_job
from tests.conftest import REPO_ROOT
from tests.e2e.harness import free_port
from tests.test_walklists_api import Demo, demo, make_target  # noqa: F401  (demo is a fixture)

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
SECRET = "test-secret-key-" + "x" * 32
STALLED_SECONDS = 5


@pytest.fixture
def settings(db_url: str) -> Settings:
    """A web process without a worker of its own: jobs wait on the queue for `canvass worker`."""
    return load_settings(environ={}, database_url=db_url, secret_key=SECRET, auth_rate_per_minute=10_000, worker_in_process=False)


def _env(db_url: str) -> dict[str, str]:
    return {**os.environ, "CANVASS_DATABASE_URL": db_url, "CANVASS_SECRET_KEY": SECRET, "CANVASS_ARGON2_PROFILE": "test",
            "CANVASS_JOB_STALLED_SECONDS": str(STALLED_SECONDS), "PYTHONPATH": str(REPO_ROOT)}


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Subprocesses started by a test, killed at its end whatever happens."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def start(processes: list[subprocess.Popen[bytes]], db_url: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """Run `canvass ARGS` (the real CLI) on the test database, output to `log`."""
    process = subprocess.Popen([sys.executable, "-m", "server.cli", *args], cwd=REPO_ROOT, env=_env(db_url),
                               stdout=log.open("ab"), stderr=subprocess.STDOUT)
    processes.append(process)
    return process


def sigkill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no shutdown code runs, the worker's jobs stay "doing" in the queue."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


async def pg(db_url: str) -> asyncpg.Connection:
    url = make_url(db_url)
    return await asyncpg.connect(host=url.host, port=url.port, user=url.username, database=url.database)


async def wait_for(predicate: Any, what: str, timeout: float = 120) -> Any:
    """Poll an async predicate until it answers something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def assert_cut_once(sessionmaker: async_sessionmaker[AsyncSession], target_id: int, job: dict[str, Any]) -> None:
    """The job's lists are exactly the target's lists, and every door is on one list once."""
    async with sessionmaker() as session:
        ids = sorted((await session.scalars(select(WalkList.id).where(WalkList.target_id == target_id))).all())
        doors = (await session.execute(
            select(WalkListStop.address_id, func.count()).join(WalkList, WalkList.id == WalkListStop.walk_list_id)
            .where(WalkList.target_id == target_id).group_by(WalkListStop.address_id)
        )).all()
    assert ids and ids == sorted(job["result"]["walk_list_ids"]), (ids, job["result"])
    assert all(count == 1 for _, count in doors), "a door is on two lists: the cut was stored twice"
    assert len(doors) == job["result"]["doors"]


async def test_cut_job_survives_sigkill_of_its_worker(
    client: AsyncTestClient[Litestar], demo: Demo, sessionmaker: async_sessionmaker[AsyncSession],  # noqa: F811
    db_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]],
) -> None:
    """A worker killed mid-cut leaves no lists; the job is queued again, the next worker completes it once, and the API shows it all."""
    target_id = await make_target(client, demo, sessionmaker, share=1.0)
    queued = await client.post(f"/api/campaigns/{demo.campaign_id}/targets/{target_id}/cut", json={"size": 20}, headers=demo.headers["organiser"])
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["id"]
    job_url = f"/api/campaigns/{demo.campaign_id}/jobs/{job_id}"
    seen: list[tuple[str, int, int | None]] = []

    async def api_status(*wanted: str) -> dict[str, Any] | None:
        state = (await client.get(job_url, headers=demo.headers["organiser"])).json()
        seen.append((state["status"], state["done"], state["total"]))
        return state if state["status"] in wanted else None

    waiting = await api_status("queued")
    assert waiting and "worker" in waiting["message"], "with no worker running the job waits on the queue"
    await asyncio.sleep(1)
    assert await api_status("queued"), "the web process must not run the job itself"

    first = start(processes, db_url, tmp_path / "worker1.log", "worker")
    await wait_for(lambda: api_status("running"), "the first worker to start the cut")
    # Hold the job row: the worker's next progress write (or its final write) waits on this lock,
    # so it is killed in the middle of its job whatever the machine's speed.
    blocker = await pg(db_url)
    lock = blocker.transaction()
    await lock.start()
    await blocker.fetch("SELECT id FROM jobs WHERE id = $1 FOR UPDATE", job_id)
    watcher = await pg(db_url)

    async def worker_waits_on_lock() -> bool:
        return bool(await watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            " AND query ~* '(UPDATE|FROM) jobs\\M' AND pid <> pg_backend_pid()"))

    await wait_for(worker_waits_on_lock, "the first worker to reach a write of its job")
    assert await watcher.fetchval("SELECT status FROM procrastinate_jobs WHERE args->>'job_id' = $1", str(job_id)) == "doing"
    sigkill(first)
    await lock.rollback()
    await blocker.close()
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(WalkList).where(WalkList.target_id == target_id)) == 0
    assert await api_status("running"), "the killed worker's job still reads as running until it is retried"

    start(processes, db_url, tmp_path / "worker2.log", "worker")
    done = await wait_for(lambda: api_status("done", "failed"), "the second worker to finish the job")
    assert done["status"] == "done", (done, (tmp_path / "worker2.log").read_text()[-2000:])
    assert done["done"] == done["total"] == done["result"]["lists"] > 0
    assert any(status == "running" for status, _, _ in seen), seen
    await assert_cut_once(sessionmaker, target_id, done)
    row = await watcher.fetchrow("SELECT status, attempts FROM procrastinate_jobs WHERE args->>'job_id' = $1", str(job_id))
    await watcher.close()
    assert row["status"] == "succeeded" and row["attempts"] >= 1, dict(row)
    assert "queued again" in (tmp_path / "worker2.log").read_text()


async def test_retried_attempt_after_the_lists_were_stored_writes_nothing(
    client: AsyncTestClient[Litestar], demo: Demo, sessionmaker: async_sessionmaker[AsyncSession],  # noqa: F811
) -> None:
    """A worker killed after its cut committed but before the queue heard: the queue runs the job again, which stores nothing more."""
    target_id = await make_target(client, demo, sessionmaker, share=0.3)
    async with sessionmaker() as session:
        job = ImportJob(campaign_id=demo.campaign_id, kind="cut", status="queued", result={"target_id": target_id})
        session.add(job)
        await session.commit()
    await run_cut_job(sessionmaker, job.id, demo.campaign_id, target_id, CutRequest(size=40), retry_on_error=True)
    async with sessionmaker() as session:
        first = await session.get(ImportJob, job.id)
        state = {"result": first.result}
    await run_cut_job(sessionmaker, job.id, demo.campaign_id, target_id, CutRequest(size=40), retry_on_error=True)
    await assert_cut_once(sessionmaker, target_id, state)


async def test_queued_cut_survives_sigkill_of_the_web_process(
    demo: Demo, sessionmaker: async_sessionmaker[AsyncSession], db_url: str, tmp_path: Path,  # noqa: F811
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """A cut queued through `canvass serve` runs on a worker after the web process is SIGKILLed."""
    port = free_port()
    web = start(processes, db_url, tmp_path / "serve.log", "serve", "--host", "127.0.0.1", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        async def ready() -> bool:
            try:
                return (await http.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(ready, "canvass serve")
        login = await http.post("/api/auth/login", json={"email": "organiser@demo.canvass", "password": DEMO_PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        target_id = await make_target(http, demo, sessionmaker, share=0.3)  # type: ignore[arg-type]
        queued = await http.post(f"/api/campaigns/{demo.campaign_id}/targets/{target_id}/cut", json={"size": 40}, headers=headers)
        assert queued.status_code == 202, queued.text
    sigkill(web)
    start(processes, db_url, tmp_path / "worker.log", "worker")

    async def finished() -> ImportJob | None:
        async with sessionmaker() as session:
            job = await session.get(ImportJob, queued.json()["id"])
            return job if job is not None and job.status in ("done", "failed") else None

    job = await wait_for(finished, "the worker to run the job queued by the killed web process")
    assert job.status == "done", job.message
    await assert_cut_once(sessionmaker, target_id, {"result": job.result})


async def test_failed_attempt_is_retried(
    db_url: str, demo: Demo, sessionmaker: async_sessionmaker[AsyncSession],  # noqa: F811
) -> None:
    """An attempt that fails on an unexpected error puts the job back on the queue (the API says so); the next attempt completes it."""
    from litestar.testing import AsyncTestClient as Client

    from server.app import create_app
    from server.db.models import Target

    settings = load_settings(environ={}, database_url=db_url, secret_key=SECRET, auth_rate_per_minute=10_000, worker_in_process=True)
    async with Client(app=create_app(settings)) as client:
        target_id = await make_target(client, demo, sessionmaker, share=0.3)
        async with sessionmaker() as session:
            target = await session.get(Target, target_id)
            good, target.geometry = target.geometry, b"not a geometry"  # reading it fails: not a refusal, an error
            await session.commit()
        queued = await client.post(f"/api/campaigns/{demo.campaign_id}/targets/{target_id}/cut", json={"size": 40}, headers=demo.headers["organiser"])
        job_url = f"/api/campaigns/{demo.campaign_id}/jobs/{queued.json()['id']}"

        async def state(predicate: Any) -> dict[str, Any] | None:
            body = (await client.get(job_url, headers=demo.headers["organiser"])).json()
            return body if predicate(body) else None

        retrying = await wait_for(lambda: state(lambda b: "retrying" in b["message"] or b["status"] in ("done", "failed")), "a failed attempt")
        assert retrying["status"] == "queued" and "attempt failed" in retrying["message"], retrying
        async with sessionmaker() as session:
            target = await session.get(Target, target_id)
            target.geometry = good
            await session.commit()
        done = await wait_for(lambda: state(lambda b: b["status"] in ("done", "failed")), "the retried attempt")
    assert done["status"] == "done", done
    await assert_cut_once(sessionmaker, target_id, done)


async def test_retention_runs_as_a_job(
    db_url: str, demo: Demo, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,  # noqa: F811
) -> None:
    """The retention policy runs as a queue job (workers defer it daily): a due campaign's people are erased."""
    from datetime import date, timedelta

    from server.db.models import Campaign, Person
    from server.db.session import create_engine_for, create_sessionmaker
    from server.jobs import RETENTION_TASK, opened_queue

    async with sessionmaker() as session:
        campaign = await session.get(Campaign, demo.campaign_id)
        campaign.polling_day, campaign.retention_days = date.today() - timedelta(days=10), 1
        await session.commit()
        assert await session.scalar(select(func.count()).select_from(Person).where(Person.campaign_id == demo.campaign_id))
    engine = create_engine_for(db_url)
    try:
        async with opened_queue(settings) as queue:
            await queue.configure_task(RETENTION_TASK).defer_async(timestamp=0)
            await queue.run_worker_async(queues=["canvass"], wait=False, install_signal_handlers=False,
                                         additional_context={"sessionmaker": create_sessionmaker(engine), "attempts": 1})
    finally:
        await engine.dispose()
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Person).where(Person.campaign_id == demo.campaign_id)) == 0
