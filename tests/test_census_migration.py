"""Migration 0010 splits census areas that campaigns shared into one copy per campaign, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from server.db.migrate import alembic_config, upgrade_database
from tests.conftest import BACKENDS, PG_HOST, PG_PORT, PG_USER, _pg_admin, _require_postgres


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend, for migrating step by step."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrate.sqlite3'}"
        return
    name = f"canvass_migrate_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        if _require_postgres():
            pytest.fail(f"PostgreSQL not reachable: {exc!r}")
        pytest.skip(f"PostgreSQL not reachable: {exc!r}")
    yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_shared_areas_become_one_copy_per_campaign(fresh_url: str) -> None:
    """An area linked to two campaigns is copied for the second; an unlinked one is dropped; links follow the copies."""
    from alembic import command

    command.upgrade(alembic_config(fresh_url), "0008")
    rows = _run(fresh_url, [
        "INSERT INTO campaigns (id, name, slug, created_at, polling_day, retention_days) VALUES (1, 'A', 'a', CURRENT_TIMESTAMP, NULL, 90)",
        "INSERT INTO campaigns (id, name, slug, created_at, polling_day, retention_days) VALUES (2, 'B', 'b', CURRENT_TIMESTAMP, NULL, 90)",
        "INSERT INTO census_areas (id, code, name, kind, vintage, population, counts) VALUES (10, 'E001', 'Shared', 'OA', 2011, 302, '{}')",
        "INSERT INTO census_areas (id, code, name, kind, vintage, population, counts) VALUES (11, 'E002', 'Only A', 'OA', 2011, 5, '{}')",
        "INSERT INTO census_areas (id, code, name, kind, vintage, population, counts) VALUES (12, 'E003', 'Nobody', 'OA', 2011, 7, '{}')",
        "INSERT INTO campaign_areas (campaign_id, area_id) VALUES (1, 10), (2, 10), (1, 11)",
    ], after="head", query=(
        "SELECT l.campaign_id, a.campaign_id, a.code, a.population FROM campaign_areas l JOIN census_areas a ON a.id = l.area_id "
        "ORDER BY l.campaign_id, a.code"
    ))
    assert rows == [(1, 1, "E001", 302), (1, 1, "E002", 5), (2, 2, "E001", 302)]
    assert _run(fresh_url, [], query="SELECT count(*) FROM census_areas WHERE code = 'E003'") == [(0,)]
    from alembic import command as alembic_command

    alembic_command.downgrade(alembic_config(fresh_url), "0008")  # back to shared areas: one copy per code, both links kept
    assert _run(fresh_url, [], query="SELECT count(*), count(DISTINCT l.campaign_id) FROM census_areas a JOIN campaign_areas l ON l.area_id = a.id "
                "WHERE a.code = 'E001'") == [(2, 2)]
    upgrade_database(fresh_url)


def _run(url: str, statements: list[str], *, query: str, after: str | None = None) -> list[tuple[object, ...]]:
    """Execute statements, optionally migrate to `after`, then return the query's rows (plain tuples)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    async def main() -> list[tuple[object, ...]]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                for statement in statements:
                    await conn.execute(text(statement))
        finally:
            await engine.dispose()
        if after:
            from alembic import command

            await asyncio.to_thread(command.upgrade, alembic_config(url), after)
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in (await conn.execute(text(query))).all()]
        finally:
            await engine.dispose()

    return asyncio.run(main())
