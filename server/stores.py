"""The shared key-value store behind rate limits and sign-in backoff, chosen by one setting.

`CANVASS_STORE_URL` empty (the default) keeps the counters in each process's
memory: right for one `canvass serve` process and the SQLite demo, no Redis
needed. `redis://host:port/db` (or `rediss://`) puts them in Redis through
Litestar's store interface, so every app instance behind a load balancer
counts against the same budget. Keys carry no personal data: the sign-in
throttle hashes the account and the address before they become keys.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from urllib.parse import urlsplit

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.registry import StoreRegistry

log = logging.getLogger("canvass.stores")
_last_warning = [-1e9]

try:
    from redis.exceptions import RedisError

    UNREACHABLE: tuple[type[Exception], ...] = (RedisError, OSError)
except ImportError:  # pragma: no cover - redis is a dependency
    UNREACHABLE = (OSError,)

STORE_TIMEOUT_S = 2.0
"""Longest wait for Redis to connect or answer before the request goes on without it."""

NAMESPACE = "canvass"
"""Prefix of every key this app writes to a shared store (other tenants of the same Redis keep theirs)."""


class StoreUrlError(ValueError):
    """A `CANVASS_STORE_URL` we cannot use (the message is one line)."""


def check_store_url(url: str) -> str:
    """The URL if its scheme is one we support ('' and `memory://` mean per-process memory)."""
    scheme = urlsplit(url).scheme.lower() if url else ""
    if scheme not in {"", "memory", "redis", "rediss"}:
        raise StoreUrlError(f"CANVASS_STORE_URL must be empty, memory:// or redis://host:port/db; got a {scheme!r} URL")
    return url


class FailOpenStore(Store):
    """A shared store that, when it cannot be reached, counts nothing instead of failing the request.

    On polling day a Redis outage must not stop phones syncing or people signing in:
    while it lasts, reads find no history and writes are dropped (limits and sign-in
    backoff are off; Argon2 still makes each guess cost), each failure is logged
    (at most once a minute) and counted in `canvass_store_errors_total`.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def _failed(self, exc: Exception) -> None:
        from server.observability import STORE_ERRORS

        STORE_ERRORS.inc()
        now = time.monotonic()
        if now - _last_warning[0] > 60:
            _last_warning[0] = now
            log.warning("shared store unreachable (%s): rate limits and sign-in backoff are off until it answers",
                        exc.__class__.__name__)

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        try:
            await self.inner.set(key, value, expires_in)
        except UNREACHABLE as exc:
            self._failed(exc)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        try:
            return await self.inner.get(key, renew_for)
        except UNREACHABLE as exc:
            self._failed(exc)
            return None

    async def delete(self, key: str) -> None:
        try:
            await self.inner.delete(key)
        except UNREACHABLE as exc:
            self._failed(exc)

    async def delete_all(self) -> None:
        await self.inner.delete_all()

    async def exists(self, key: str) -> bool:
        try:
            return await self.inner.exists(key)
        except UNREACHABLE as exc:
            self._failed(exc)
            return False

    async def expires_in(self, key: str) -> int | None:
        try:
            return await self.inner.expires_in(key)
        except UNREACHABLE as exc:
            self._failed(exc)
            return None

    def with_namespace(self, namespace: str) -> FailOpenStore:
        return FailOpenStore(self.inner.with_namespace(namespace))  # type: ignore[attr-defined]

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)  # type: ignore[arg-type]


class Stores(StoreRegistry):
    """Litestar's store registry, plus closing the Redis connection pool when the app stops."""

    def __init__(self, root: Store | None) -> None:
        self._root = root
        super().__init__(default_factory=root.with_namespace if root is not None else (lambda _name: MemoryStore()))  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        """Close the shared client (nothing to do for memory stores)."""
        if self._root is not None:
            await self._root.__aexit__(None, None, None)


def build_store_registry(url: str, namespace: str = NAMESPACE) -> Stores:
    """One store per name, in this process's memory or under `namespace` in Redis."""
    scheme = urlsplit(check_store_url(url)).scheme.lower() if url else ""
    if scheme in {"", "memory"}:
        return Stores(None)
    from litestar.stores.redis import RedisStore
    from redis.asyncio import Redis

    # Short timeouts: a Redis that has gone silent (not refusing, just gone) must not hold requests up.
    client = Redis.from_url(url, socket_connect_timeout=STORE_TIMEOUT_S, socket_timeout=STORE_TIMEOUT_S)
    return Stores(FailOpenStore(RedisStore(client, namespace=namespace, handle_client_shutdown=True)))


