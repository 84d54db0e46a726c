"""Shared fixtures: every database test runs on SQLite and on PostgreSQL, through the real app.

`db_url` is parametrised over both backends. PostgreSQL gets a fresh database
per test run on 127.0.0.1:5432; when it cannot be reached the PostgreSQL half
skips, unless CANVASS_REQUIRE_POSTGRES=1 (CI), where it fails.
"""

from __future__ import annotations

import asyncio
import os

# Cheap argon2 parameters for the suite only (set before server modules import the hasher).
os.environ.setdefault("CANVASS_ARGON2_PROFILE", "test")
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import create_app
from server.db.migrate import upgrade_database
from server.db.models import Base
from server.db.session import create_engine_for, create_sessionmaker
from server.settings import Settings, load_settings

PG_HOST = os.environ.get("CANVASS_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CANVASS_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("CANVASS_TEST_PG_USER", "postgres")
BACKENDS = ["sqlite", "postgresql"]
TEST_PASSWORD = "correct horse battery staple"


def _require_postgres() -> bool:
    return os.environ.get("CANVASS_REQUIRE_POSTGRES") == "1"


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str | None]]:
    """Migrated databases for the run: a SQLite file and (if reachable) a fresh PostgreSQL database."""
    sqlite_path = tmp_path_factory.mktemp("db") / "canvass-test.sqlite3"
    urls: dict[str, str | None] = {"sqlite": f"sqlite+aiosqlite:///{sqlite_path}", "postgresql": None}
    upgrade_database(urls["sqlite"])  # type: ignore[arg-type]
    pg_name = f"canvass_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    pg_error: Exception | None = None
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{pg_name}"'))
        urls["postgresql"] = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{pg_name}"
        upgrade_database(urls["postgresql"])
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        pg_error = exc
    urls["pg_error"] = repr(pg_error) if pg_error else None
    yield urls
    if urls["postgresql"]:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
async def db_url(request: pytest.FixtureRequest, database_urls: dict[str, str | None]) -> AsyncIterator[str]:
    """A migrated, empty database URL; parametrised so each test runs on SQLite and PostgreSQL."""
    url = database_urls[request.param]
    if url is None:
        reason = f"PostgreSQL not reachable on {PG_HOST}:{PG_PORT}: {database_urls.get('pg_error')}"
        if _require_postgres():
            pytest.fail(reason + " (CANVASS_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    yield url
    await truncate_all(url)


async def truncate_all(url: str) -> None:
    """Empty every table (keeping the schema and Alembic's version row) between tests."""
    engine = create_engine_for(url)
    try:
        async with engine.begin() as conn:
            tables = [t.name for t in Base.metadata.sorted_tables]
            if conn.dialect.name == "postgresql":
                await conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
                # The job queue too: a job left from one test must not run on the next test's rows.
                await conn.execute(text("TRUNCATE procrastinate_jobs, procrastinate_workers, procrastinate_periodic_defers RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(tables):
                    await conn.execute(text(f'DELETE FROM "{table}"'))
                await conn.execute(text("DELETE FROM sqlite_sequence")) if await _has_sqlite_sequence(conn) else None
    finally:
        await engine.dispose()


async def _has_sqlite_sequence(conn: Any) -> bool:
    row = await conn.execute(text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'"))
    return row.first() is not None


REDIS = ("127.0.0.1", 6379)


@pytest.fixture
def redis_url() -> str:
    """The local Redis (shared rate limits, issue 18): a skip when it does not answer, a failure in CI (.ci/run starts it)."""
    import socket

    try:
        with socket.create_connection(REDIS, timeout=1):
            pass
    except OSError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not answering on {REDIS[0]}:{REDIS[1]} in CI")
        pytest.skip(f"Redis is not answering on {REDIS[0]}:{REDIS[1]}")
    return f"redis://{REDIS[0]}:{REDIS[1]}/0"


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Test settings on the parametrised database (on PostgreSQL the app runs its own job worker, as a one-machine deployment does)."""
    return load_settings(
        environ={}, database_url=db_url, secret_key="test-secret-key-" + "x" * 32, auth_rate_per_minute=10_000, sync_rate_per_minute=100_000,
        worker_in_process=True,
    )


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The real app on the test database."""
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """Litestar's AsyncTestClient over the real app (lifespan runs: real engine, real connections)."""
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def sessionmaker(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Direct database access for arranging and checking state."""
    engine = create_engine_for(db_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@dataclass
class World:
    """Two campaigns and one user per role, with their access tokens."""

    campaign_a: int
    campaign_b: int
    users: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        """Authorization header for a named user ('anonymous' gives none)."""
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}


ROLES_IN_WORLD = ("superuser", "admin", "organiser", "lead", "canvasser", "other_canvasser")


@pytest.fixture
async def world(client: AsyncTestClient[Litestar], sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> World:
    """Arrange campaigns A and B; admin/organiser/lead/canvasser in A; a canvasser of B; a superuser."""
    from server.accounts.security import build_jwt_auth
    from server.accounts.services import AccountService
    from server.campaigns.schemas import CampaignCreate
    from server.campaigns.services import create_campaign
    from server.db.models import Role

    jwt_auth = build_jwt_auth(settings.secret_key, settings.access_token_minutes)
    async with sessionmaker() as session:
        accounts = AccountService(session, settings, jwt_auth)
        a = await create_campaign(session, CampaignCreate(name="Campaign A", slug="campaign-a"), None)
        b = await create_campaign(session, CampaignCreate(name="Campaign B", slug="campaign-b"), None)
        w = World(campaign_a=a.id, campaign_b=b.id)
        spec = {
            "superuser": (None, None),
            "admin": (a.id, Role.admin),
            "organiser": (a.id, Role.organiser),
            "lead": (a.id, Role.lead),
            "canvasser": (a.id, Role.canvasser),
            "other_canvasser": (b.id, Role.canvasser),
        }
        for name, (campaign_id, role) in spec.items():
            user = await accounts.create_user(f"{name}@example.org", name.title(), TEST_PASSWORD, is_superuser=name == "superuser")
            if campaign_id is not None and role is not None:
                await accounts.add_member(user, campaign_id, role)
            w.users[name] = user.id
        await session.commit()
    for name in spec:
        response = await client.post("/api/auth/login", json={"email": f"{name}@example.org", "password": TEST_PASSWORD})
        assert response.status_code == 200, response.text
        w.tokens[name] = response.json()["access_token"]
    return w


REPO_ROOT = Path(__file__).resolve().parents[1]
