"""Background jobs: durable on PostgreSQL (a procrastinate queue and `canvass worker`), in-process on SQLite.

A job is a row of our `jobs` table (kind, status, progress, result: what the API and
the console show) plus, on PostgreSQL, a procrastinate job that carries its arguments.
procrastinate keeps its queue in PostgreSQL itself (migration 0019 creates its schema),
so durability needs no other service: a job outlives the web process that queued it,
and the worker that runs it. A worker that dies (SIGKILL, a lost machine) stops sending
heartbeats; after `job_stalled_seconds` any other worker (or the same one restarted)
puts its jobs back on the queue and they run again. Failed attempts are retried up to
`job_attempts` times. Each job body is idempotent (a cut writes its lists in the
transaction that marks its job done), so a job run twice completes once.

On SQLite (the demo) there is no queue and no worker: the same job bodies run as
asyncio tasks in the web process, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import procrastinate
from procrastinate import JobContext, RetryStrategy
from sqlalchemy.engine import make_url

from server.settings import Settings

logger = logging.getLogger("canvass.jobs")

QUEUE = "canvass"
CUT_TASK = "canvass.cut"
RETENTION_TASK = "canvass.retention"


def conninfo(database_url: str) -> str:
    """libpq connection string for our (SQLAlchemy) PostgreSQL URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def queue_app(settings: Settings, pool_size: int = 2) -> procrastinate.App:
    """A procrastinate app on the settings' PostgreSQL database with our tasks (open it before use)."""
    connector = procrastinate.PsycopgConnector(conninfo=conninfo(settings.database_url), min_size=1, max_size=pool_size)
    app = procrastinate.App(connector=connector)
    # Tasks are registered on each app (a procrastinate Blueprint can be added to only one app).
    app.task(name=CUT_TASK, queue=QUEUE, pass_context=True, retry=RetryStrategy(max_attempts=MAX_ATTEMPTS, wait=2))(cut_task)
    retention = app.task(name=RETENTION_TASK, queue=QUEUE, pass_context=True, queueing_lock="retention",
                         retry=RetryStrategy(max_attempts=3, wait=60))(retention_task)
    if settings.retention_cron:
        # Every worker runs procrastinate's periodic deferrer; it defers each tick once, whatever the number of workers.
        app.periodic(cron=settings.retention_cron, periodic_id="retention")(retention)
    return app


MAX_ATTEMPTS = 10
"""The queue's own bound on attempts; `job_attempts` (at most this) decides when a job stops being retried."""


async def _cut_body(sessionmaker: Any, job_id: int, campaign_id: int, target_id: int, request: dict[str, Any], retry_on_error: bool) -> None:
    from server.walklists.schemas import CutRequest
    from server.walklists.services import run_cut_job

    await run_cut_job(sessionmaker, job_id, campaign_id, target_id, msgspec.convert(request, CutRequest), retry_on_error=retry_on_error)


async def cut_task(context: JobContext, job_id: int, campaign_id: int, target_id: int, request: dict[str, Any]) -> None:
    """Cut a target into walk lists (server.walklists.services.run_cut_job) for job row `job_id`."""
    extra = context.additional_context
    attempts_left = context.job.attempts + 1 < min(extra["attempts"], MAX_ATTEMPTS)
    await _cut_body(extra["sessionmaker"], job_id, campaign_id, target_id, request, retry_on_error=attempts_left)


async def retention_task(context: JobContext, timestamp: int | None = None) -> None:
    """Apply the retention policy to every due campaign (server.retention; idempotent: a second run finds nothing more)."""
    from server.db.session import session_scope
    from server.retention import run_retention

    async with session_scope(context.additional_context["sessionmaker"]) as session:
        reports = await run_retention(session)
    for report in reports:
        logger.info("retention: campaign %s erased %s people, %s contact attempts", report.campaign_id, report.people, report.contact_attempts)


SHUTDOWN_SECONDS = 10.0
"""How long shutdown waits for a background task (the in-process worker, the fold) before going on without it."""


async def stop_task(task: asyncio.Task[Any], what: str, timeout: float = SHUTDOWN_SECONDS) -> None:
    """Cancel a background task and wait for it, but never for ever: a task stuck in its own
    clean-up (a driver waiting on a socket) must not keep the process (or a test) from stopping."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        logger.warning("%s did not stop within %s s of being cancelled; shutting down without it", what, timeout)
        task.cancel()
    elif not task.cancelled() and task.exception() is not None:
        logger.warning("%s ended with %r", what, task.exception())


class JobRunner:
    """Where the web process sends jobs: the durable queue on PostgreSQL, its own event loop on SQLite."""

    def __init__(self, settings: Settings, sessionmaker: Any) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.durable = not settings.is_sqlite
        # An in-process worker needs connections of its own: its listener holds one, fetching and heartbeats others.
        pool = 6 if settings.worker_in_process else 2
        self.queue: procrastinate.App | None = queue_app(settings, pool) if self.durable else None
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None

    async def open(self) -> None:
        if self.queue is not None:
            await self.queue.open_async()
            if self.settings.worker_in_process:
                self._worker = asyncio.create_task(run_worker(self.settings, self.sessionmaker, self.queue, install_signal_handlers=False))

    async def close(self) -> None:
        if self._worker is not None:
            await stop_task(self._worker, "the in-process job worker")
        if self._tasks:
            # Let in-process jobs (SQLite) finish their writes before the engine goes.
            await asyncio.wait(list(self._tasks), timeout=60)
        if self.queue is not None:
            try:
                await asyncio.wait_for(self.queue.close_async(), timeout=SHUTDOWN_SECONDS)
            except TimeoutError:
                logger.warning("the job queue's connections did not close within %s s; shutting down without them", SHUTDOWN_SECONDS)

    async def submit_cut(self, job_id: int, campaign_id: int, target_id: int, request: Any) -> None:
        """Run the cut of job row `job_id` (already committed, status "queued")."""
        args = {"job_id": job_id, "campaign_id": campaign_id, "target_id": target_id, "request": msgspec.to_builtins(request)}
        if self.queue is not None:
            await self.queue.configure_task(CUT_TASK).defer_async(**args)
            return
        task = asyncio.get_running_loop().create_task(_cut_body(self.sessionmaker, retry_on_error=False, **args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def retry_stalled_jobs(queue: procrastinate.App, stalled_seconds: float) -> int:
    """Put the running jobs of workers silent for `stalled_seconds` back on the queue (procrastinate's recipe)."""
    retried = 0
    for job in await queue.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=stalled_seconds):
        try:
            await queue.job_manager.retry_job(job)
            retried += 1
            logger.warning("job %s (%s) was running on a worker that stopped; queued again", job.id, job.task_name)
        except Exception as exc:  # another worker retried it first
            logger.info("job %s not retried: %s", job.id, exc)
    return retried


async def _watch_stalled(queue: procrastinate.App, stalled_seconds: float) -> None:
    while True:
        try:
            await retry_stalled_jobs(queue, stalled_seconds)
        except Exception:
            logger.exception("looking for stalled jobs failed")
        await asyncio.sleep(max(1.0, stalled_seconds / 2))


async def run_worker(settings: Settings, sessionmaker: Any, queue: procrastinate.App, install_signal_handlers: bool = True) -> None:
    """Run jobs from the queue until stopped (SIGINT/SIGTERM, or cancelled), re-queueing those of dead workers."""
    stalled = float(settings.job_stalled_seconds)
    watcher = asyncio.create_task(_watch_stalled(queue, stalled))
    try:
        await queue.run_worker_async(
            queues=[QUEUE], concurrency=settings.worker_concurrency, install_signal_handlers=install_signal_handlers,
            update_heartbeat_interval=max(0.5, stalled / 4), stalled_worker_timeout=stalled,
            additional_context={"sessionmaker": sessionmaker, "attempts": settings.job_attempts},
        )
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


@contextlib.asynccontextmanager
async def opened_queue(settings: Settings, pool_size: int = 4) -> AsyncIterator[procrastinate.App]:
    """The queue app, open for the duration (CLI, tests)."""
    queue = queue_app(settings, pool_size)
    async with queue.open_async():
        yield queue
