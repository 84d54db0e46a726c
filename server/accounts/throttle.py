"""Sign-in backoff that slows guessing without letting a stranger lock anyone out.

Failures are counted per (account, source address): after `free_failures` of
them each further attempt from that address for that account must wait
`BASE_SECONDS * 2**n` (capped), even with the right password. Someone guessing
the admin's password from elsewhere is slowed; the admin, signing in from
their own address, is not. A looser budget per address (`free_failures *
PER_ADDRESS_FACTOR` failures over any accounts) slows password spraying.
Unknown addresses are counted exactly like real accounts, so backoff reveals
nothing.

Counters live in a Litestar store (`server.stores`): this process's memory by
default, or Redis (`CANVASS_STORE_URL`) so every app instance behind a load
balancer sees the same counts. Keys are keyed hashes (HMAC with the server's
secret: no email or address is stored); each entry expires once quiet for the cap. Counting is a read then a
write, not atomic: two instances failing at the same instant may count one
failure instead of two, which only delays backoff by one attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable

import msgspec
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore

BASE_SECONDS = 30
PER_ADDRESS_FACTOR = 10
SWEEP_EVERY = 1000
"""A memory store forgets expired entries only when asked: sweep it every this many failures."""


class _Failures(msgspec.Struct, array_like=True):
    count: int
    last: float
    blocked_until: float


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Failures).decode


class SignInThrottle:
    """Exponential backoff keyed on (account, address), plus a looser per-address budget, in a shared store."""

    def __init__(
        self, free_failures: int, max_delay_seconds: int, store: Store | None = None, *, secret: bytes = b"",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.free_failures = max(1, free_failures)
        self.max_delay = max(1, max_delay_seconds)
        self.store = store if store is not None else MemoryStore()
        self.clock = clock  # wall clock: instances on other machines read the same entries
        self._failures_seen = 0
        self._secret = secret or secrets.token_bytes(32)

    def _keys(self, account: str, address: str) -> tuple[str, str]:
        def digest(*parts: str) -> str:  # keyed: an address space is small enough to hash exhaustively
            return hmac.new(self._secret, "\0".join(parts).encode(), hashlib.sha256).hexdigest()[:32]

        return "a:" + digest(account.strip().lower(), address), "ip:" + digest(address)

    async def _get(self, key: str, now: float) -> _Failures | None:
        raw = await self.store.get(key)
        if raw is None:
            return None
        try:
            entry = _decode(raw)
        except msgspec.DecodeError:
            return None
        if now - entry.last > self.max_delay and now >= entry.blocked_until:
            return None
        return entry

    async def retry_after(self, account: str, address: str) -> int:
        """Seconds this address must wait before trying this account again (0: go ahead)."""
        now = self.clock()
        waits = [entry.blocked_until - now for key in self._keys(account, address) if (entry := await self._get(key, now))]
        return max(0, math.ceil(max(waits, default=0)))

    async def failed(self, account: str, address: str) -> None:
        """Count a failed sign-in and, past the free failures, start or lengthen the wait."""
        now = self.clock()
        for key, free in zip(self._keys(account, address), (self.free_failures, self.free_failures * PER_ADDRESS_FACTOR), strict=True):
            entry = await self._get(key, now) or _Failures(0, now, now)
            entry.count += 1
            entry.last = now
            if entry.count >= free:
                entry.blocked_until = now + min(self.max_delay, BASE_SECONDS * 2 ** min(entry.count - free, 20))
            keep = max(entry.last + self.max_delay, entry.blocked_until) - now
            await self.store.set(key, _encode(entry), expires_in=max(1, math.ceil(keep)))
        self._failures_seen += 1
        if isinstance(self.store, MemoryStore) and self._failures_seen % SWEEP_EVERY == 0:
            await self.store.delete_expired()

    async def succeeded(self, account: str, address: str) -> None:
        """A right password clears this account's count from this address (the per-address budget stays)."""
        await self.store.delete(self._keys(account, address)[0])
