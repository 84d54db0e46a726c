"""Liveness and readiness probes (used by the Dockerfile health check and orchestrators)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from sqlalchemy import text

from server.db.dialect import dialect_name
from server.db.migrate import current_revision, head_revision
from server.errors import DomainError


class Health(msgspec.Struct):
    """Liveness answer."""

    status: str


class Readiness(msgspec.Struct):
    """Readiness answer: the database answers and its schema is at the shipped migration."""

    status: str
    database: str
    migration: str | None
    expected_migration: str


class NotReady(DomainError):
    """The database is unreachable or not migrated."""

    status_code = 503
    title = "Service unavailable"
    slug = "not-ready"


class HealthController(Controller):
    """Probes; no authentication."""

    path = ""
    tags = ["health"]

    @get("/health", opt={"exclude_from_auth": True})
    async def health(self) -> Health:
        """The process is up."""
        return Health(status="ok")

    @get("/ready", opt={"exclude_from_auth": True, "problems": (503,)})
    async def ready(self, state: State) -> Readiness:
        """The database answers and migrations are current (503 problem details otherwise)."""
        engine = state.engine
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            revision = await current_revision(engine)
        except Exception as exc:
            raise NotReady(f"Database unreachable: {exc.__class__.__name__}") from exc
        expected = head_revision()
        if revision != expected:
            raise NotReady(f"Database is at migration {revision}, expected {expected}; run `canvass db upgrade`.")
        return Readiness(status="ready", database=dialect_name(engine), migration=revision, expected_migration=expected)
