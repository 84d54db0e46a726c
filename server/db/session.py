"""Engines and sessions: one session per request or per CLI command, the same services either way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from server.db.dialect import is_postgres
from server.settings import Settings


def create_engine_for(settings: Settings | str, **kwargs: Any) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL, foreign keys and serialised (BEGIN IMMEDIATE) writes.

    DESIGN.md's SQLite sync cursor relies on write transactions being serialised:
    every transaction starts with BEGIN IMMEDIATE, so the feed counter bumped
    inside it is strictly ordered with commits.
    """
    url = settings if isinstance(settings, str) else settings.database_url
    # A failed statement's error (and so any log of it) never carries its bound values: they may be personal data.
    kwargs.setdefault("hide_parameters", True)
    if make_url(url).get_backend_name() == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            from pathlib import Path

            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    # Recycle rather than ping on every checkout: a ping is one more round trip per request.
    kwargs.setdefault("pool_recycle", 1800)
    engine = create_async_engine(url, **kwargs)
    # Bulk INSERTs without RETURNING as multi-row VALUES statements too ("insertmanyvalues"),
    # not one Bind/Execute per row: a push's 100 feed and receipt rows are one statement each,
    # which PostgreSQL runs several times faster than 100 pipelined executions.
    engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE can be issued.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (handlers return Structs built from them)."""
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def session_scope(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A unit of work for code outside requests (CLI, jobs): commit on success, roll back on error."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def autocommit_session(state: Any) -> AsyncSession:
    """A session on an autocommit connection (PostgreSQL) from the app's state: each statement
    commits by itself, with no BEGIN/COMMIT round trips. For a lone read (authentication) or a
    push that is one atomic statement (``server.sync.store.apply_plain_push``).

    SQLite gets the ordinary session: its connections begin every transaction with BEGIN
    IMMEDIATE themselves (``_configure_sqlite``)."""
    sessionmaker = state.sessionmaker
    engine = state.get("engine")
    if engine is None or not is_postgres(engine):
        return sessionmaker()
    autocommit = state.get("autocommit_engine")
    if autocommit is None:
        autocommit = state.autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return sessionmaker(bind=autocommit)
