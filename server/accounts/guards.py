"""Role guards, computed only from server-held memberships (never from anything a client sends).

The guards are coroutines although they never await: Litestar runs a plain function
guard in its thread pool, a thread hand-off on every request for a dictionary look-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from server.accounts.security import AuthUser
from server.db.models import Role
from server.errors import Forbidden, Unauthenticated

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]

ORGANISERS = (Role.admin, Role.organiser)
REVIEWERS = (Role.admin, Role.organiser, Role.lead)
MEMBERS = (Role.admin, Role.organiser, Role.lead, Role.canvasser)


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> AuthUser:
    """The authenticated caller, or 401."""
    user = connection.scope.get("user")
    if not isinstance(user, AuthUser):
        raise Unauthenticated("Sign in first.")
    return user


async def device_token_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """A phone's device token may only call the routes marked `device_ok` (sync, me), in its own campaign."""
    user = connection.scope.get("user")
    if not isinstance(user, AuthUser) or user.device_id is None:
        return
    if not handler.opt.get("device_ok"):
        raise Forbidden("A device token can only be used for sync; sign in with a password for this.")
    campaign_id = connection.path_params.get("campaign_id")
    if campaign_id is not None and int(campaign_id) != user.device_campaign_id:
        raise Forbidden("This device is registered to another campaign.")


def require_role(*roles: Role) -> Guard:
    """Guard: the caller holds one of `roles` in the campaign named by the `campaign_id` path parameter."""
    allowed = frozenset(roles)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        user = current_user(connection)
        if user.is_superuser:
            return
        campaign_id = connection.path_params.get("campaign_id")
        if campaign_id is None:
            raise Forbidden("This route needs a campaign.")
        role = user.role_in(int(campaign_id))
        if role is None:
            raise Forbidden("You are not a member of this campaign.")
        if role not in allowed:
            raise Forbidden(f"Your role ({role.value}) may not do this; it needs {', '.join(sorted(r.value for r in allowed))}.")

    guard.__name__ = "require_" + "_or_".join(sorted(r.value for r in allowed))
    return guard


async def require_superuser(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Guard: only a system administrator (creates campaigns, manages users across campaigns)."""
    if not current_user(connection).is_superuser:
        raise Forbidden("Only a system administrator may do this.")


async def require_authenticated(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Guard: any signed-in caller (the auth middleware already enforces this; explicit for the matrix)."""
    current_user(connection)


async def require_device(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Guard: sync routes take a registered phone's device token, not a password sign-in."""
    if current_user(connection).device_id is None:
        raise Forbidden("Sync needs a device token: register this phone first (POST /api/campaigns/{id}/devices).")
