"""The shared key-value store behind rate limits and sign-in backoff, chosen by one setting.

`CANVASS_STORE_URL` empty (the default) keeps the counters in each process's
memory: right for one `canvass serve` process and the SQLite demo, no Redis
needed. `redis://host:port/db` (or `rediss://`) puts them in Redis through
Litestar's store interface, so every app instance behind a load balancer
counts against the same budget. Keys carry no personal data: the sign-in
throttle hashes the account and the address before they become keys.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.registry import StoreRegistry

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

    return Stores(RedisStore.with_client(url=url, namespace=namespace))


def is_shared(store: Store) -> bool:
    """True when the store is seen by every process (not this process's memory)."""
    return not isinstance(store, MemoryStore)
