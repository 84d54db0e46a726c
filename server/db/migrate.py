"""Run and inspect Alembic migrations from code (CLI, app start-up checks, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from server.db.session import create_engine_for

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = database_url
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Migrate the database to `revision` (creating the SQLite file if needed)."""
    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    """The newest migration shipped with this code."""
    script = ScriptDirectory.from_config(alembic_config(""))
    head = script.get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    async with engine.connect() as connection:
        return await connection.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def upgrade_database_async(database_url: str) -> None:
    """Upgrade from inside a running event loop (tests, app start-up) without nesting asyncio.run."""
    engine = create_engine_for(database_url)
    try:
        async with engine.connect() as connection:

            def _run(sync_connection: object) -> None:
                config = alembic_config(database_url)
                config.attributes["connection"] = sync_connection
                command.upgrade(config, "head")

            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()
