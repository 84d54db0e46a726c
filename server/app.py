"""The Litestar application factory: one place wires domains, auth, errors and the database."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from server.accounts.controllers import AuthController, CampaignPeopleController
from server.accounts.guards import device_token_guard
from server.accounts.security import build_jwt_auth
from server.accounts.throttle import SignInThrottle
from server.campaigns.controllers import CampaignController
from server.console.controllers import ConsoleController
from server.db.session import create_engine_for, create_sessionmaker
from server.dependencies import provide_db_session, provide_settings, provide_user
from server.errors import EXCEPTION_HANDLERS
from server.geography.controllers import AreaController, ImportController
from server.health.controllers import HealthController
from server.jobs import JobRunner, stop_task
from server.observability import (
    PROMETHEUS,
    MetricsController,
    RequestIdMiddleware,
    configure_logging,
    record_fold,
)
from server.openapi import ClosedStructSchemaPlugin, document_responses
from server.phone.controllers import PhoneAppController, StreetLayerController
from server.results.controllers import ResultsController, ResultsExportController
from server.results.tallies import fold_periodically
from server.security_headers import SECURITY_HEADERS, security_headers_hook
from server.settings import Settings, SettingsError, get_settings
from server.stores import build_store_registry
from server.strict_bodies import refuse_loose_json_bodies
from server.surveys.controllers import SurveyController
from server.sync.controllers import SyncController
from server.sync.erasure import ErasureController
from server.sync.review import ConflictReviewController
from server.targeting.controllers import TargetingController
from server.walklists.controllers import WalkListController

__all__ = ["ROUTE_HANDLERS", "SECURITY_HEADERS", "app_factory", "create_app"]

ROUTE_HANDLERS = [
    HealthController,
    MetricsController,
    ConsoleController,
    PhoneAppController,
    StreetLayerController,
    AuthController,
    CampaignController,
    CampaignPeopleController,
    ImportController,
    AreaController,
    TargetingController,
    WalkListController,
    SurveyController,
    SyncController,
    ConflictReviewController,
    ErasureController,
    ResultsController,
    ResultsExportController,
]


def _rate_limits(settings: Settings) -> list[RateLimitConfig]:
    """Per-client limits: sign-in/refresh/join codes (by IP) and sync (by bearer token), chosen by the handler's `rate_limit` opt."""

    # Keys may sit in a shared store (Redis): a keyed hash, so neither a token nor an address is kept there.
    secret = settings.secret_key.encode()

    def digest(value: str) -> str:
        return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:32]

    def by_address(request: Any) -> str:
        return "ip:" + digest(request.client.host if request.client else "?")

    def by_token(request: Any) -> str:
        header = request.headers.get("authorization", "")
        return "tok:" + digest(header) if header else by_address(request)

    # Async on purpose: Litestar runs a plain function here in its thread pool, two
    # thread hand-offs per request (one per config) that cost the sync path about a third.
    async def auth_limited(request: Any) -> bool:
        return request.route_handler.opt.get("rate_limit") == "auth"

    async def sync_limited(request: Any) -> bool:
        return request.route_handler.opt.get("rate_limit") == "sync"

    return [
        RateLimitConfig(
            rate_limit=("minute", settings.auth_rate_per_minute),
            check_throttle_handler=auth_limited,
            identifier_for_request=by_address,
            store="rate_limit_auth",
        ),
        RateLimitConfig(
            rate_limit=("minute", settings.sync_rate_per_minute),
            check_throttle_handler=sync_limited,
            identifier_for_request=by_token,
            store="rate_limit_sync",
        ),
    ]


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the app for the given settings (defaults: the environment)."""
    settings = settings or get_settings()
    jwt_auth = build_jwt_auth(settings.secret_key, settings.access_token_minutes)
    stores = build_store_registry(settings.store_url, settings.store_namespace)

    @asynccontextmanager
    async def database_lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        engine = create_engine_for(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.jobs = JobRunner(settings, app.state.sessionmaker)
        await app.state.jobs.open()
        folder = None
        if not settings.is_sqlite and settings.result_fold_seconds > 0:
            folder = asyncio.create_task(fold_periodically(app.state.sessionmaker, settings.result_fold_seconds, record_fold))
        try:
            yield
        finally:
            if folder is not None:
                await stop_task(folder, "the background fold")
            # In-process jobs (SQLite) finish their writes before the engine goes; the queue closes.
            await app.state.jobs.close()
            await engine.dispose()
            await stores.aclose()

    # Uploads have their own cap (CANVASS_MAX_UPLOAD_BYTES): a per-app subclass, so apps with other settings keep theirs.
    imports = type("ImportController", (ImportController,), {"request_max_body_size": settings.max_upload_bytes})
    app = Litestar(
        route_handlers=[imports if handler is ImportController else handler for handler in ROUTE_HANDLERS],
        lifespan=[database_lifespan],
        state=State({
            "settings": settings, "jwt_auth": jwt_auth,
            "sign_in_throttle": SignInThrottle(
                settings.login_max_failures, settings.login_lockout_minutes * 60, stores.get("sign_in_throttle"),
                secret=settings.secret_key.encode(),
            ),
        }),
        stores=stores,
        dependencies={
            "db_session": Provide(provide_db_session),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "user": Provide(provide_user, sync_to_thread=False),
        },
        guards=[device_token_guard],
        middleware=[RequestIdMiddleware(), PROMETHEUS.middleware, *(limit.middleware for limit in _rate_limits(settings))],
        on_app_init=[jwt_auth.on_app_init],
        plugins=[ClosedStructSchemaPlugin()],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.max_request_bytes,
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins)) if settings.cors_origins else None,
        before_send=[security_headers_hook(settings)],
        before_request=refuse_loose_json_bodies,
        openapi_config=OpenAPIConfig(
            title="Canvass API",
            version="0.1.0",
            description="Door-to-door canvassing: area targeting, walk lists, offline sync, results.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        debug=settings.debug,
    )
    document_responses(app)
    return app


def app_factory() -> Litestar:
    """Entry point for ASGI servers: `uvicorn --factory server.app:app_factory`; bad settings refuse to start in one line."""
    try:
        settings = get_settings()
    except SettingsError as exc:
        import sys

        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    app = create_app(settings)
    configure_logging(settings.log_format)  # after the app: Litestar's default logging config is replaced
    return app
