"""Request-scoped providers: one database session per request, committed by the framework on success."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, TypeAlias

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.guards import current_user
from server.accounts.security import AuthUser
from server.settings import Settings


async def provide_db_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """Yield the request's session; commit after the handler succeeds, roll back if anything raised."""
    async with state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


def provide_settings(state: State) -> Settings:
    """The app's settings."""
    return state.settings  # type: ignore[no-any-return]


def provide_user(request: Request[Any, Any, Any]) -> AuthUser:
    """The authenticated caller (401 if none)."""
    return current_user(request)


# Explicit parameter sources for handlers (house style: declare every parameter's source).
DbSession: TypeAlias = NamedDependency[AsyncSession]
CurrentUser: TypeAlias = NamedDependency[AuthUser]
AppSettings: TypeAlias = NamedDependency[Settings]
