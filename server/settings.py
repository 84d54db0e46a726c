"""Settings read from the environment, so one image serves the demo and production."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

import msgspec

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "var" / "canvass.sqlite3"


MIN_SECRET_KEY_BYTES = 32


class SettingsError(ValueError):
    """Settings the server must not start with (the message is one line, for the CLI and the ASGI factory)."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every tunable of the server; each field maps to one `CANVASS_*` variable (see README)."""

    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"
    secret_key: str = ""
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    device_token_days: int = 180
    max_clock_skew_seconds: int = 300
    max_request_bytes: int = 10 * 1024 * 1024
    max_upload_bytes: int = 200 * 1024 * 1024
    max_polygon_vertices: int = 10_000
    auth_rate_per_minute: int = 30
    sync_rate_per_minute: int = 600
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    cors_origins: tuple[str, ...] = ()
    public_url: str = "http://127.0.0.1:8000"
    tile_url: str = ""
    small_count_threshold: int = 5
    result_fold_seconds: int = 2
    """PostgreSQL: how often the background task folds queued attempts into the result tallies."""
    store_url: str = ""
    """Where rate limits and sign-in backoff live: empty (this process's memory) or `redis://host:port/db`, shared by every instance."""
    store_namespace: str = "canvass"
    """Prefix of this deployment's keys in the shared store (two deployments may share one Redis)."""
    log_format: str = "json"
    """`json`: one JSON object a line on stderr (with the request id); `text`: plain lines for a terminal."""
    job_attempts: int = 3
    """PostgreSQL: how many times a background job (a cut) is tried before it is failed for good (1 to 10)."""
    job_stalled_seconds: int = 30
    """PostgreSQL: a job worker silent this long is taken for dead and its running jobs are queued again."""
    worker_concurrency: int = 1
    """Jobs one `canvass worker` runs at once (a cut is CPU-bound: run more workers rather than more jobs each)."""
    worker_in_process: bool = False
    """PostgreSQL: also run a job worker inside each `canvass serve` process (one machine, no separate worker)."""
    retention_cron: str = "17 3 * * *"
    """PostgreSQL: when job workers apply the retention policy (cron, UTC; empty: never, run `canvass retention run` yourself)."""
    dask_scheduler: str = ""
    """`canvass cut --dask`: address of a dask.distributed scheduler (tcp://host:8786); empty starts a LocalCluster."""
    dask_workers: int = 0
    """LocalCluster size for `canvass cut --dask` (0: one worker per core)."""
    debug: bool = False
    env: str = "development"
    """`production` demands a real secret key even on SQLite (any non-SQLite database does too)."""

    @property
    def is_sqlite(self) -> bool:
        """True when the database is the embedded SQLite file (the demo default)."""
        return self.database_url.startswith("sqlite")

    @property
    def is_production(self) -> bool:
        """Production: `CANVASS_ENV=production`, or any database other than the demo's SQLite."""
        return self.env.strip().lower() == "production" or not self.is_sqlite


_ENV_MAP = {
    "database_url": ("DATABASE_URL", "CANVASS_DATABASE_URL"),
}


def _coerce(raw: str, current: object) -> object:
    if isinstance(current, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def normalise_database_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite:///` URLs and pick the async drivers we ship."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///"):
        url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def load_settings(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from `CANVASS_*` variables (and `DATABASE_URL`), then explicit overrides."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, object] = {}
    defaults = Settings()
    for field in Settings.__struct_fields__:
        names = (*_ENV_MAP.get(field, ()), "CANVASS_" + field.upper())
        for name in names:
            if name in env and env[name] != "":
                values[field] = _coerce(env[name], getattr(defaults, field))
    values.update(overrides)
    if "database_url" in values:
        values["database_url"] = normalise_database_url(str(values["database_url"]))
    settings = msgspec.structs.replace(defaults, **values)  # type: ignore[arg-type]
    from server.stores import StoreUrlError, check_store_url

    try:
        check_store_url(settings.store_url)
    except StoreUrlError as exc:
        raise SettingsError(str(exc)) from None
    if settings.log_format not in {"json", "text"}:
        raise SettingsError(f"CANVASS_LOG_FORMAT must be json or text; got {settings.log_format!r}")
    if not 1 <= settings.job_attempts <= 10:
        raise SettingsError(f"CANVASS_JOB_ATTEMPTS must be 1 to 10; got {settings.job_attempts}")
    if settings.job_stalled_seconds < 1:
        raise SettingsError(f"CANVASS_JOB_STALLED_SECONDS must be at least 1; got {settings.job_stalled_seconds}")
    if settings.is_production:
        if len(settings.secret_key.encode()) < MIN_SECRET_KEY_BYTES:
            raise SettingsError(
                f"CANVASS_SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes in production (it signs every token); "
                f"got {len(settings.secret_key.encode())}. Generate one: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return settings
    if not settings.secret_key:
        settings = msgspec.structs.replace(settings, secret_key=_development_secret())
    return settings


def _development_secret() -> str:
    """A per-checkout random secret kept in var/, so demo tokens survive restarts; set CANVASS_SECRET_KEY in production."""
    path = PROJECT_ROOT / "var" / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return load_settings()
